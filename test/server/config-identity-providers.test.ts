import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isTesseraError } from '../../src/core/errors.js'
import { loadConfig, type ServerConfig } from '../../src/server/config.js'

// TESSERA_OIDC_* (docs/configuration.md "Identity providers"): checked at start, each error
// naming the variable.

const STRONG = 'Q3vV1mJ0t2k8xH5aR9cW7eZ4nB6pL1sD0fG2hJ3kM4'
const dirs: string[] = []

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function load(env: Record<string, string>): ServerConfig {
  const cwd = mkdtempSync(join(tmpdir(), 'tessera-config-idp-'))
  dirs.push(cwd)
  return loadConfig(
    { TESSERA_SECRET: STRONG, NODE_ENV: 'production', ...env },
    { cwd, envFiles: false },
  )
}

function message(env: Record<string, string>): string {
  try {
    load(env)
  } catch (error) {
    expect(isTesseraError(error, 'config_invalid')).toBe(true)
    return (error as Error).message
  }
  throw new Error('expected loadConfig to throw')
}

describe('identity providers in the configuration', () => {
  it('reads OpenID providers and the GitHub preset', () => {
    const config = load({
      TESSERA_OIDC_PROVIDERS: 'Google, github, my-idp',
      TESSERA_OIDC_GOOGLE_ISSUER: 'https://accounts.google.com',
      TESSERA_OIDC_GOOGLE_CLIENT_ID: 'google-client',
      TESSERA_OIDC_GOOGLE_CLIENT_SECRET: 'google-secret',
      TESSERA_OIDC_GITHUB_CLIENT_ID: 'gh-client',
      TESSERA_OIDC_GITHUB_CLIENT_SECRET: 'gh-secret',
      TESSERA_OIDC_MY_IDP_ISSUER: 'https://idp.example.com/realms/main',
      TESSERA_OIDC_MY_IDP_CLIENT_ID: 'public-client',
      TESSERA_OIDC_MY_IDP_SCOPES: 'openid email, groups',
    })
    expect(config.identityProviders).toEqual([
      {
        name: 'google',
        kind: 'oidc',
        issuer: 'https://accounts.google.com',
        clientId: 'google-client',
        clientSecret: 'google-secret',
      },
      {
        name: 'github',
        kind: 'github',
        clientId: 'gh-client',
        clientSecret: 'gh-secret',
        github: {},
      },
      {
        name: 'my-idp',
        kind: 'oidc',
        issuer: 'https://idp.example.com/realms/main',
        clientId: 'public-client',
        scopes: ['openid', 'email', 'groups'],
      },
    ])
    expect(load({}).identityProviders).toEqual([])
  })

  it('names the variable that is missing or wrong', () => {
    expect(message({ TESSERA_OIDC_PROVIDERS: 'google' })).toContain('TESSERA_OIDC_GOOGLE_CLIENT_ID')
    expect(
      message({ TESSERA_OIDC_PROVIDERS: 'google', TESSERA_OIDC_GOOGLE_CLIENT_ID: 'x' }),
    ).toContain('TESSERA_OIDC_GOOGLE_ISSUER is required')
    expect(
      message({
        TESSERA_OIDC_PROVIDERS: 'corp',
        TESSERA_OIDC_CORP_CLIENT_ID: 'x',
        TESSERA_OIDC_CORP_ISSUER: 'http://idp.example.com',
      }),
    ).toContain('TESSERA_OIDC_CORP_ISSUER must be an https URL')
    expect(
      message({
        TESSERA_OIDC_PROVIDERS: 'corp',
        TESSERA_OIDC_CORP_CLIENT_ID: 'x',
        TESSERA_OIDC_CORP_ISSUER: 'not a url',
      }),
    ).toContain('TESSERA_OIDC_CORP_ISSUER must be an absolute https URL')
    expect(
      message({ TESSERA_OIDC_PROVIDERS: 'github', TESSERA_OIDC_GITHUB_CLIENT_ID: 'x' }),
    ).toContain('TESSERA_OIDC_GITHUB_CLIENT_SECRET is required')
    expect(
      message({
        TESSERA_OIDC_PROVIDERS: 'corp',
        TESSERA_OIDC_CORP_CLIENT_ID: 'x',
        TESSERA_OIDC_CORP_PRESET: 'gitlab',
      }),
    ).toContain('TESSERA_OIDC_CORP_PRESET must be github')
    expect(message({ TESSERA_OIDC_PROVIDERS: 'a b' })).toContain('TESSERA_OIDC_PROVIDERS')
    expect(message({ TESSERA_OIDC_PROVIDERS: 'x,X' })).toContain(
      'TESSERA_OIDC_PROVIDERS names x twice',
    )
  })

  it('accepts plain http only for a provider on this machine', () => {
    const config = load({
      TESSERA_OIDC_PROVIDERS: 'dev',
      TESSERA_OIDC_DEV_CLIENT_ID: 'x',
      TESSERA_OIDC_DEV_ISSUER: 'http://127.0.0.1:8080',
    })
    expect(config.identityProviders[0]?.issuer).toBe('http://127.0.0.1:8080')
  })
})
