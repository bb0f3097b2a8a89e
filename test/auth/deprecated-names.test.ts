import { expect, it } from 'vitest'
import * as auth from '../../src/auth/index.js'

// STYLE.md's acronym rule renamed three exports; the old names stay as deprecated aliases so
// existing imports keep working (docs/migrating.md).
it('the old names of renamed exports are the same functions', () => {
  expect(auth.createHmacKeySet).toBe(auth.createHMACKeySet)
  expect(auth.createSmtpMailer).toBe(auth.createSMTPMailer)
  expect(auth.parseDatabaseUrl).toBe(auth.parseDatabaseURL)
  expect(auth.parseDatabaseURL('sqlite::memory:')).toEqual({
    dialect: 'sqlite',
    filename: ':memory:',
  })
})
