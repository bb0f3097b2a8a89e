import { describe, expect, it } from 'vitest'
import { createAuditLog, sanitizeAuditDetail } from '../../src/auth/audit.js'
import { describeEachDatabase } from '../helpers/databases.js'

describe('sanitizeAuditDetail', () => {
  it('drops secret-looking keys and values, nested values and prototype keys', () => {
    const detail = JSON.parse(
      '{"reason":"wrong_password","password":"hunter2hunter2","newPassword":"x","token":"t",' +
        '"resetToken":"t","passwordHash":"h","apiKey":"k","cookie":"c","authorization":"Bearer x",' +
        '"note":"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA","legacy":"pbkdf2_sha256$600000$s$h",' +
        '"blob":"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEf","nested":{"a":1},"__proto__":{"x":1},' +
        '"count":3,"ok":true,"none":null}',
    ) as Record<string, unknown>
    expect(sanitizeAuditDetail(detail)).toEqual({
      reason: 'wrong_password',
      count: 3,
      ok: true,
      none: null,
    })
  })

  it('keeps ids (UUIDs) and clips long values', () => {
    const out = sanitizeAuditDetail({
      groupId: '0190a5b2-7c3e-7d4f-8a1b-123456789abc',
      text: 'word '.repeat(200),
    })
    expect(out.groupId).toBe('0190a5b2-7c3e-7d4f-8a1b-123456789abc')
    expect(out.text).toHaveLength(256)
  })
})

describeEachDatabase('audit log', (open) => {
  it('is queryable by user and by type, newest first, with paging', async () => {
    let clock = 1_000_000
    const audit = createAuditLog(await open(), { now: () => clock })
    for (let i = 0; i < 5; i += 1) {
      clock += 1000
      await audit.record({
        type: 'login',
        outcome: 'failure',
        userId: 'u1',
        ip: '10.0.0.1',
        userAgent: 'UA',
        detail: { i },
      })
    }
    clock += 1000
    await audit.record({ type: 'logout', outcome: 'success', userId: 'u1' })
    clock += 1000
    await audit.record({ type: 'login', outcome: 'success', userId: 'u2' })

    const u1 = await audit.list({ userId: 'u1' })
    expect(u1.map((e) => e.type)).toEqual(['logout', 'login', 'login', 'login', 'login', 'login'])
    const logins = await audit.list({ type: 'login', limit: 2 })
    expect(logins.map((e) => e.userId)).toEqual(['u2', 'u1'])
    expect(logins[1]?.detail).toEqual({ i: 4 })
    const page = await audit.list({ userId: 'u1', type: 'login', limit: 2, offset: 2 })
    expect(page.map((e) => e.detail.i)).toEqual([2, 1])
    expect(page[0]).toMatchObject({ ip: '10.0.0.1', userAgent: 'UA', outcome: 'failure' })
    expect(typeof page[0]?.at).toBe('number')
    expect(await audit.list({ since: 1_006_000 })).toHaveLength(2)
    expect(await audit.list({ until: 1_002_000 })).toHaveLength(1)
    await expect(audit.list({ limit: -1 })).rejects.toMatchObject({ code: 'invalid_argument' })
  })

  it('prunes events older than a given age', async () => {
    let clock = 10_000_000
    const audit = createAuditLog(await open(), { now: () => clock })
    await audit.record({ type: 'login', outcome: 'success' })
    clock += 3_600_000
    await audit.record({ type: 'logout', outcome: 'success' })
    clock += 1_800_000
    expect(await audit.prune(3600)).toBe(1)
    expect((await audit.list()).map((e) => e.type)).toEqual(['logout'])
    expect(await audit.prune(3600)).toBe(0)
  })

  it('never stores a password, token or hash given as detail', async () => {
    const db = await open()
    const audit = createAuditLog(db)
    await audit.record({
      type: 'password_changed',
      outcome: 'success',
      detail: {
        password: 'correct horse battery',
        token: 'AAAA',
        hash: '$argon2id$v=19$x',
        reason: 'ok',
      },
    })
    const rows = await db.selectFrom('audit_events').selectAll().execute()
    const dump = JSON.stringify(rows)
    expect(dump).not.toContain('correct horse')
    expect(dump).not.toContain('AAAA')
    expect(dump).not.toContain('argon2')
    expect(dump).toContain('"reason\\":\\"ok\\"')
  })

  it('counts events by filter and per UTC time bucket and outcome, in both databases', async () => {
    const db = await open()
    const hour = 3_600_000
    const base = Date.UTC(2024, 0, 10, 0, 0)
    const at = (ms: number) => createAuditLog(db, { now: () => base + ms })
    await at(10 * 60_000).record({ type: 'login', outcome: 'success', userId: 'u1' })
    await at(20 * 60_000).record({ type: 'login', outcome: 'failure', userId: 'u1' })
    await at(hour + 1).record({ type: 'login', outcome: 'denied', userId: 'u2' })
    await at(hour + 2).record({ type: 'login', outcome: 'failure', userId: null })
    await at(hour + 3).record({ type: 'logout', outcome: 'success', userId: 'u1' })
    const log = createAuditLog(db)
    expect(await log.count()).toBe(5)
    expect(await log.count({ type: 'login' })).toBe(4)
    expect(await log.count({ type: 'login', outcomes: ['failure', 'denied'] })).toBe(3)
    expect(await log.count({ type: 'login', outcomes: [] })).toBe(0)
    expect(await log.count({ type: 'login', since: base + hour })).toBe(2)
    expect(await log.count({ userId: 'u1', until: base + hour })).toBe(2)
    const buckets = await log.countOverTime({ type: 'login', bucketSeconds: 3600 })
    const sorted = buckets
      .map((b) => [b.start - base, b.outcome, b.count])
      .sort((a, b) => String(a).localeCompare(String(b)))
    expect(sorted).toEqual([
      [0, 'failure', 1],
      [0, 'success', 1],
      [hour, 'denied', 1],
      [hour, 'failure', 1],
    ])
    const days = await log.countOverTime({ since: base, bucketSeconds: 86_400 })
    expect(days.reduce((sum, b) => sum + b.count, 0)).toBe(5)
    expect(new Set(days.map((b) => b.start))).toEqual(new Set([base]))
    await expect(log.countOverTime({ bucketSeconds: 0 })).rejects.toMatchObject({
      code: 'invalid_argument',
    })
    await expect(log.countOverTime({ bucketSeconds: 1.5 })).rejects.toMatchObject({
      code: 'invalid_argument',
    })
  })
})
