import { createHash, randomBytes } from 'node:crypto'
import type { Response } from 'express'
import type request from 'supertest'
import { expect } from 'vitest'

// Shared by the express-session drop-in tests: secrets, the store-key hash, and reading the
// drop-in's cookie `name=t:<sid>.<token>.<kid>.<mac>` (URI-encoded) out of a response.

export function secret(): string {
  return randomBytes(32).toString('base64url')
}

/** SHA-256, base64url: how the drop-in turns a cookie token into `req.sessionID`. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url')
}

export function setCookieLines(res: request.Response): string[] {
  const header = res.headers['set-cookie'] as string[] | string | undefined
  return header === undefined ? [] : Array.isArray(header) ? header : [header]
}

export function setCookieLine(res: request.Response, name = 'connect.sid'): string | undefined {
  return setCookieLines(res).find((line) => line.startsWith(`${name}=`))
}

/** `name=value` of the response's session cookie, to send back. */
export function sessionCookie(res: request.Response, name = 'connect.sid'): string | undefined {
  return setCookieLine(res, name)?.split(';')[0]
}

/** The id and token of a drop-in cookie (`name=value`). */
export function cookieParts(cookie: string): { sid: string; token: string } {
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1))
  expect(value.startsWith('t:')).toBe(true)
  const dot = value.indexOf('.')
  const signed = value.slice(dot + 1).split('.')
  return { sid: value.slice(2, dot), token: signed.slice(0, -2).join('.') }
}

/** A handler that counts visits in `req.session.n` and answers the count. */
export function countVisits(
  req: { session?: Record<string, unknown> | null },
  res: Response,
): void {
  const sess = req.session as Record<string, unknown>
  sess.n = ((sess.n as number | undefined) ?? 0) + 1
  res.send(String(sess.n))
}
