// The CLI against PostgreSQL + Redis, as a production server would run: accounts in a unique
// PostgreSQL schema (search_path through the URL's `options`), sessions in Redis under a unique
// key prefix; both removed afterwards.
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createClient } from 'redis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { openCliContext } from '../../src/cli/context.js'
import { REDIS_URL, describeWithService, uniqueName } from '../helpers/services.js'
import { fixture, type CliFixture } from './cli-harness.js'

const PASSWORD = 'correct horse battery staple'

describeWithService('postgres', 'tessera CLI on PostgreSQL + Redis', (pgUrl) => {
  const schema = uniqueName('cli')
  const prefix = `${uniqueName('cli')}:`
  let fx: CliFixture

  beforeAll(async () => {
    if (REDIS_URL === undefined || REDIS_URL === '') {
      throw new Error('TESSERA_TEST_REDIS_URL must be set for the PostgreSQL + Redis CLI test')
    }
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    await client.query(`CREATE SCHEMA "${schema}"`)
    await client.end()
    const url = new URL(pgUrl)
    url.searchParams.set('options', `-c search_path=${schema}`)
    fx = fixture(mkdtempSync(join(tmpdir(), 'tessera-cli-pg-')), {
      DATABASE_URL: url.toString(),
      REDIS_URL,
      TESSERA_REDIS_PREFIX: prefix,
    })
  })

  afterAll(async () => {
    fx.cleanup()
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await client.end()
    const redis = createClient({ url: REDIS_URL ?? '' })
    await redis.connect()
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) await redis.del(keys)
    }
    await redis.close()
  })

  it('migrates into its own schema, creates and lists users, ends Redis sessions, rotates keys', async () => {
    const migrated = await fx.run(['migrate', '--json'])
    expect(migrated.stderr).toBe('')
    expect(migrated.code).toBe(0)
    expect((JSON.parse(migrated.stdout) as { applied: string[] }).applied.length).toBeGreaterThan(0)
    // The tables went to the unique schema, not to public.
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    const tables = await client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    )
    await client.end()
    expect(tables.rows.map((row) => row.table_name)).toContain('users')

    const created = await fx.run(['user', 'create', 'pg@example.com', '--admin', '--json'], {
      stdin: `${PASSWORD}\n`,
    })
    expect(created.code).toBe(0)
    const id = (JSON.parse(created.stdout) as { user: { id: string } }).user.id
    const listed = JSON.parse((await fx.run(['user', 'list', '--json'])).stdout) as {
      users: Array<{ email: string; isAdmin: boolean }>
    }
    expect(listed.users).toEqual([
      expect.objectContaining({ email: 'pg@example.com', isAdmin: true }),
    ])

    // Sessions made through the session manager on the same Redis, as the server makes them.
    const context = await openCliContext({ env: fx.env, cwd: fx.dir, err: () => {} })
    let tokens: string[]
    try {
      tokens = [
        (await context.sessions.create(id)).token,
        (await context.sessions.create(id)).token,
      ]
    } finally {
      await context.close()
    }
    // They are in Redis under this test's prefix (not in the database).
    const redis = createClient({ url: REDIS_URL ?? '' })
    await redis.connect()
    const stored: string[] = []
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      stored.push(...keys)
    }
    await redis.close()
    expect(stored.length).toBeGreaterThan(0)
    const sessions = JSON.parse(
      (await fx.run(['sessions', 'list', 'pg@example.com', '--json'])).stdout,
    ) as { sessions: unknown[] }
    expect(sessions.sessions).toHaveLength(2)
    const disabled = await fx.run(['user', 'disable', id])
    expect(disabled.code).toBe(0)
    expect(disabled.stdout).toMatch(/ended 2 session\(s\)/)
    const after = await openCliContext({ env: fx.env, cwd: fx.dir, err: () => {} })
    try {
      for (const token of tokens) expect(await after.sessions.validateToken(token)).toBeNull()
    } finally {
      await after.close()
    }

    const before = JSON.parse((await fx.run(['keys', 'list', '--json'])).stdout) as {
      current: string
    }
    expect((await fx.run(['keys', 'rotate'])).code).toBe(0)
    const rotated = JSON.parse((await fx.run(['keys', 'list', '--json'])).stdout) as {
      current: string
    }
    expect(rotated.current).not.toBe(before.current)
  })
})
