import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isTesseraError } from '../../src/core/errors.js'
import { DEV_SECRET_FILE, loadConfig, type ServerConfig } from '../../src/server/config.js'

const STRONG = 'Q3vV1mJ0t2k8xH5aR9cW7eZ4nB6pL1sD0fG2hJ3kM4'
const dirs: string[] = []

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-config-'))
  dirs.push(dir)
  return dir
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function load(env: Record<string, string>, cwd = tempDir(), notices: string[] = []): ServerConfig {
  return loadConfig(env, { cwd, onNotice: (line) => notices.push(line) })
}

function configError(env: Record<string, string>, cwd = tempDir()): Error {
  try {
    load(env, cwd)
  } catch (error) {
    expect(isTesseraError(error, 'config_invalid')).toBe(true)
    return error as Error
  }
  throw new Error('expected loadConfig to throw')
}

describe('loadConfig defaults', () => {
  it('gives the documented defaults with only a secret set', () => {
    const cwd = tempDir()
    const config = load({ TESSERA_SECRET: STRONG, NODE_ENV: 'production' }, cwd)
    expect(config).toMatchObject({
      mode: 'production',
      port: 3000,
      host: undefined,
      secret: STRONG,
      secretSource: 'TESSERA_SECRET',
      secretFallbacks: [],
      keyringPolicy: 'strict',
      publicUrl: 'http://localhost:3000',
      publicOrigin: 'http://localhost:3000',
      https: false,
      trustedOrigins: ['http://localhost:3000'],
      trustedProxies: [],
      database: { dialect: 'sqlite', filename: join(cwd, 'data', 'tessera.db') },
      redisUrl: null,
      sessionIdle: 7 * 86_400,
      sessionAbsolute: 30 * 86_400,
      accessTtl: 900,
      signup: 'open',
      mailer: { kind: 'console' },
      jwtAlg: 'EdDSA',
      logLevel: 'info',
      logFormat: 'auto',
      redisPrefix: 'tessera:',
      mailFrom: 'tessera <no-reply@localhost>',
      passwordMinLength: 12,
      passwordMaxLength: 128,
      identityProviders: [],
      identityCallbackLimit: 30,
    })
  })

  it('takes TESSERA_PASSWORD_MIN_STRENGTH from 0 to 4, 3 by default', () => {
    expect(load({ TESSERA_SECRET: STRONG }).passwordMinStrength).toBe(3)
    expect(
      load({ TESSERA_SECRET: STRONG, TESSERA_PASSWORD_MIN_STRENGTH: '0' }).passwordMinStrength,
    ).toBe(0)
    for (const bad of ['5', '-1', 'high', '2.5']) {
      expect(
        configError({ TESSERA_SECRET: STRONG, TESSERA_PASSWORD_MIN_STRENGTH: bad }).message,
      ).toContain('TESSERA_PASSWORD_MIN_STRENGTH')
    }
  })

  it('drains for TESSERA_SHUTDOWN_DRAIN seconds on stop, 5 by default, 0 to 300', () => {
    expect(load({ TESSERA_SECRET: STRONG }).shutdownDrain).toBe(5)
    expect(load({ TESSERA_SECRET: STRONG, TESSERA_SHUTDOWN_DRAIN: '0' }).shutdownDrain).toBe(0)
    expect(load({ TESSERA_SECRET: STRONG, TESSERA_SHUTDOWN_DRAIN: '0.25' }).shutdownDrain).toBe(
      0.25,
    )
    expect(load({ TESSERA_SECRET: STRONG, TESSERA_SHUTDOWN_DRAIN: '30s' }).shutdownDrain).toBe(30)
    for (const bad of ['-1', '301', 'soon', '5m', '1e3']) {
      expect(
        configError({ TESSERA_SECRET: STRONG, TESSERA_SHUTDOWN_DRAIN: bad }).message,
      ).toContain('TESSERA_SHUTDOWN_DRAIN')
    }
  })

  it('refuses a minimum password length above the maximum, naming both', () => {
    const error = configError({
      TESSERA_SECRET: STRONG,
      TESSERA_PASSWORD_MIN_LENGTH: '40',
      TESSERA_PASSWORD_MAX_LENGTH: '20',
    })
    expect(error.message).toContain('TESSERA_PASSWORD_MIN_LENGTH')
    expect(error.message).toContain('TESSERA_PASSWORD_MAX_LENGTH')
  })

  it('reads every variable', () => {
    const cwd = tempDir()
    const config = load(
      {
        NODE_ENV: 'production',
        PORT: '8080',
        HOST: '127.0.0.1',
        SESSION_SECRET: STRONG,
        TESSERA_SECRET_FALLBACKS: `${STRONG}x, ${STRONG}y`,
        TESSERA_PUBLIC_URL: 'https://auth.example.com/base/',
        TESSERA_TRUSTED_ORIGINS: 'https://app.example.com, http://localhost:5173',
        TESSERA_TRUSTED_PROXIES: '10.0.0.0/8,127.0.0.1,::1,fd00::/8',
        DATABASE_URL: 'postgres://u:p@db:5432/app',
        REDIS_URL: 'redis://cache:6379/1',
        TESSERA_SESSION_IDLE: '15m',
        TESSERA_SESSION_ABSOLUTE: '12h',
        TESSERA_ACCESS_TTL: '30',
        TESSERA_SIGNUP: 'closed',
        TESSERA_MAILER: 'smtp://user:pass@mail:587',
        TESSERA_JWT_ALG: 'ES256',
        LOG_LEVEL: 'DEBUG',
      },
      cwd,
    )
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      secretSource: 'SESSION_SECRET',
      secretFallbacks: [`${STRONG}x`, `${STRONG}y`],
      publicUrl: 'https://auth.example.com/base',
      publicOrigin: 'https://auth.example.com',
      https: true,
      trustedOrigins: [
        'https://auth.example.com',
        'https://app.example.com',
        'http://localhost:5173',
      ],
      trustedProxies: ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8'],
      database: { dialect: 'postgres', connectionString: 'postgres://u:p@db:5432/app' },
      redisUrl: 'redis://cache:6379/1',
      sessionIdle: 900,
      sessionAbsolute: 43_200,
      accessTtl: 30,
      signup: 'closed',
      mailer: { kind: 'smtp', url: 'smtp://user:pass@mail:587' },
      jwtAlg: 'ES256',
      logLevel: 'debug',
      logFormat: 'auto',
    })
  })

  it('accepts sqlite paths, :memory: and file mailers relative to cwd', () => {
    const cwd = tempDir()
    const base = { TESSERA_SECRET: STRONG }
    expect(load({ ...base, DATABASE_URL: 'sqlite:db/x.db' }, cwd).database).toEqual({
      dialect: 'sqlite',
      filename: join(cwd, 'db', 'x.db'),
    })
    expect(load({ ...base, DATABASE_URL: 'sqlite:///tmp/abs.db' }, cwd).database).toEqual({
      dialect: 'sqlite',
      filename: '/tmp/abs.db',
    })
    expect(load({ ...base, DATABASE_URL: 'sqlite::memory:' }, cwd).database).toEqual({
      dialect: 'sqlite',
      filename: ':memory:',
    })
    expect(load({ ...base, TESSERA_MAILER: 'file:./outbox' }, cwd).mailer).toEqual({
      kind: 'file',
      dir: join(cwd, 'outbox'),
    })
  })

  it('takes TESSERA_SECRET over its aliases and says the others are ignored', () => {
    const notices: string[] = []
    const config = load(
      { TESSERA_SECRET: STRONG, JWT_SECRET: `${STRONG}-other`, NODE_ENV: 'production' },
      tempDir(),
      notices,
    )
    expect(config.secret).toBe(STRONG)
    expect(notices.join('\n')).toMatch(/JWT_SECRET/)
    expect(notices.join('\n')).not.toContain(STRONG)
    expect(load({ JWT_SECRET: STRONG, NODE_ENV: 'production' }).secretSource).toBe('JWT_SECRET')
  })

  it('treats any NODE_ENV other than development or test as production', () => {
    expect(() => load({ NODE_ENV: 'staging' })).toThrow(/tessera-auth secret/)
    expect(load({ NODE_ENV: 'staging', TESSERA_SECRET: STRONG }).keyringPolicy).toBe('strict')
  })
})

describe('loadConfig errors name the variable', () => {
  const base = { TESSERA_SECRET: STRONG }
  const cases: Array<[string, string]> = [
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['TESSERA_PUBLIC_URL', 'not a url'],
    ['TESSERA_PUBLIC_URL', 'ftp://example.com'],
    ['TESSERA_PUBLIC_URL', 'https://example.com/?q=1'],
    ['TESSERA_PUBLIC_URL', 'https://user:pw@example.com'],
    ['TESSERA_TRUSTED_ORIGINS', 'app.example.com'],
    ['TESSERA_TRUSTED_ORIGINS', 'https://app.example.com/path'],
    ['TESSERA_TRUSTED_ORIGINS', 'javascript:alert(1)'],
    ['TESSERA_TRUSTED_PROXIES', 'proxy.local'],
    ['TESSERA_TRUSTED_PROXIES', '10.0.0.0/33'],
    ['TESSERA_TRUSTED_PROXIES', '::1/129'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['DATABASE_URL', 'sqlite:'],
    ['REDIS_URL', 'http://localhost:6379'],
    ['REDIS_URL', 'localhost:6379'],
    ['TESSERA_SESSION_IDLE', 'forever'],
    ['TESSERA_SESSION_ABSOLUTE', '0'],
    ['TESSERA_ACCESS_TTL', '15 minutes'],
    ['TESSERA_SIGNUP', 'maybe'],
    ['TESSERA_MAILER', 'sendmail'],
    ['TESSERA_MAILER', 'file:'],
    ['TESSERA_JWT_ALG', 'none'],
    ['TESSERA_JWT_ALG', 'HS512'],
    ['LOG_LEVEL', 'loud'],
    ['TESSERA_REDIS_PREFIX', 'has space'],
    ['TESSERA_REDIS_PREFIX', 'tag{x}'],
    ['TESSERA_NEAR_CACHE', 'sometimes'],
    ['TESSERA_MAIL_FROM', 'a\nBcc: x@example.com'],
    ['TESSERA_PASSWORD_MIN_LENGTH', 'twelve'],
    ['TESSERA_PASSWORD_MIN_LENGTH', '0'],
    ['TESSERA_PASSWORD_MAX_LENGTH', '5000'],
  ]
  it.each(cases)('%s=%s', (key, value) => {
    expect(configError({ ...base, [key]: value }).message).toContain(key)
  })

  it('never echoes a secret in an error', () => {
    const error = configError({ NODE_ENV: 'production', TESSERA_SECRET: 'keyboard cat' })
    expect(error.message).not.toContain('keyboard cat')
  })
})

describe('secrets in production', () => {
  it('refuses to start without a secret and says how to make one', () => {
    const error = configError({ NODE_ENV: 'production' })
    expect(error.message).toContain('TESSERA_SECRET')
    expect(error.message).toContain('npx tessera-auth secret')
  })

  it.each([
    'keyboard cat',
    'short-secret',
    'x'.repeat(64),
    'change-this-secret-key',
    'change-this-secret-key'.repeat(2),
    'CHANGE_THIS_SECRET_KEY_00000000000000',
    'keyboard-cat keyboard-cat keyboard-cat',
  ])('refuses the weak secret %j', (secret) => {
    for (const key of ['TESSERA_SECRET', 'SESSION_SECRET', 'JWT_SECRET']) {
      const error = configError({ NODE_ENV: 'production', [key]: secret })
      expect(error.message).toContain(key)
      expect(error.message).toContain('npx tessera-auth secret')
    }
  })

  it('refuses a weak fallback', () => {
    const error = configError({
      NODE_ENV: 'production',
      TESSERA_SECRET: STRONG,
      TESSERA_SECRET_FALLBACKS: 'keyboard cat',
    })
    expect(error.message).toContain('TESSERA_SECRET_FALLBACKS')
  })

  it('never writes a secret file', () => {
    const cwd = tempDir()
    expect(() => load({ NODE_ENV: 'production' }, cwd)).toThrow()
    expect(() => statSync(join(cwd, DEV_SECRET_FILE))).toThrow()
  })
})

describe('secrets in development and test', () => {
  it.each(['development', 'test', undefined])(
    'NODE_ENV=%s generates a secret once, mode 0600, and reuses it',
    (nodeEnv) => {
      const cwd = tempDir()
      const env: Record<string, string> = nodeEnv === undefined ? {} : { NODE_ENV: nodeEnv }
      const notices: string[] = []
      const first = load(env, cwd, notices)
      expect(first.secretSource).toBe('generated')
      expect(first.keyringPolicy).toBe('weak')
      expect(first.secret.length).toBeGreaterThanOrEqual(43)
      const file = join(cwd, DEV_SECRET_FILE)
      expect(first.secretFile).toBe(file)
      expect(readFileSync(file, 'utf8').trim()).toBe(first.secret)
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(notices.join('\n')).toContain(file)
      expect(notices.join('\n')).not.toContain(first.secret)

      const laterNotices: string[] = []
      const second = load(env, cwd, laterNotices)
      expect(second.secret).toBe(first.secret)
      expect(second.secretSource).toBe('file')
      expect(laterNotices).toEqual([])
    },
  )

  it('accepts a weak secret with a notice', () => {
    const notices: string[] = []
    const config = load(
      { NODE_ENV: 'development', TESSERA_SECRET: 'keyboard cat' },
      tempDir(),
      notices,
    )
    expect(config.secret).toBe('keyboard cat')
    expect(config.keyringPolicy).toBe('weak')
    expect(notices.join('\n')).toMatch(/TESSERA_SECRET .*production/)
  })

  it('refuses a weak secret file instead of using it', () => {
    const cwd = tempDir()
    mkdirSync(join(cwd, 'data'))
    writeFileSync(join(cwd, DEV_SECRET_FILE), 'keyboard cat\n')
    expect(() => load({}, cwd)).toThrow(/delete it/)
  })
})

describe('.env files', () => {
  it('reads .env then .env.local, and the real environment wins', () => {
    const cwd = tempDir()
    writeFileSync(
      join(cwd, '.env'),
      `# comment\nTESSERA_SECRET="${STRONG}"\nPORT=4000\nTESSERA_SIGNUP=closed\nLOG_LEVEL=warn\n`,
    )
    writeFileSync(join(cwd, '.env.local'), 'PORT=5000\nexport TESSERA_JWT_ALG=RS256\n')
    const config = load({ NODE_ENV: 'production', LOG_LEVEL: 'error' }, cwd)
    expect(config.secret).toBe(STRONG)
    expect(config.port).toBe(5000)
    expect(config.signup).toBe('closed')
    expect(config.jwtAlg).toBe('RS256')
    expect(config.logLevel).toBe('error')
  })

  it('skips the files when envFiles is false', () => {
    const cwd = tempDir()
    writeFileSync(join(cwd, '.env'), 'PORT=4000\n')
    const config = loadConfig({ TESSERA_SECRET: STRONG }, { cwd, envFiles: false })
    expect(config.port).toBe(3000)
  })

  it('an error in .env names the variable', () => {
    const cwd = tempDir()
    writeFileSync(join(cwd, '.env'), 'TESSERA_SECRET=' + STRONG + '\nREDIS_URL=nope\n')
    expect(configError({}, cwd).message).toContain('REDIS_URL')
  })
})
