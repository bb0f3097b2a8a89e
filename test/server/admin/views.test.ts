import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { AuditEvent } from '../../../src/auth/audit.js'
import { describeDetail } from '../../../src/server/admin/views/audit-detail.js'
import { niceCeiling } from '../../../src/server/admin/views/chart.js'
import { deviceName } from '../../../src/server/admin/views/device.js'
import { emailText, plural } from '../../../src/server/admin/views/layout.js'

function event(detail: AuditEvent['detail'], userId: string | null = 'u1'): AuditEvent {
  return {
    id: 'e1',
    at: 0,
    type: 'permission_changed',
    outcome: 'success',
    userId,
    ip: null,
    userAgent: null,
    detail,
  }
}

describe('admin views: device names', () => {
  it('names common browsers, keeps unknown agents as they are, and never throws', () => {
    expect(
      deviceName(
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
      ),
    ).toBe('Chrome 131 on Windows 10')
    expect(
      deviceName(
        'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
      ),
    ).toMatch(/^Chrome 131 on Android 14/)
    expect(deviceName('curl/8.5.0')).toBe('curl/8.5.0')
    expect(deviceName('x'.repeat(500))).toHaveLength(80)
    expect(deviceName(undefined)).toBe('—')
    expect(deviceName('   ')).toBe('—')
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (agent) => {
        const name = deviceName(agent)
        return typeof name === 'string' && name.length <= 200
      }),
    )
  })
})

describe('admin views: audit details in words', () => {
  const names = { emails: new Map([['u1', 'a@example.com']]), groups: new Map([['g1', 'editors']]) }

  it('reads every change the accounts service records', () => {
    const cases: Array<[AuditEvent['detail'], string]> = [
      [{ change: 'set_admin', isAdmin: true }, 'made an administrator'],
      [{ change: 'set_admin', isAdmin: false }, 'no longer an administrator'],
      [{ change: 'group_created', groupId: 'g1' }, 'created group editors'],
      [{ change: 'group_deleted', groupId: 'gone1234x' }, 'deleted group gone1234 (deleted)'],
      [{ change: 'group_added', groupId: 'g1' }, 'added to group editors'],
      [{ change: 'group_removed', groupId: 'g1' }, 'removed from group editors'],
      [{ change: 'granted', codename: 'posts.edit' }, 'granted posts.edit'],
      [{ change: 'revoked', codename: 'posts.edit' }, 'revoked posts.edit'],
      [{ change: 'group_granted', groupId: 'g1', codename: 'a.b' }, 'granted a.b to group editors'],
      [
        { change: 'group_revoked', groupId: 'g1', codename: 'a.b' },
        'revoked a.b from group editors',
      ],
      [{ change: 'permission_deleted', codename: 'a.b' }, 'deleted permission a.b'],
      [{ panel: 'admin', reason: 'not_admin' }, 'admin panel; not allowed in the admin panel'],
      [{ reason: 'unknown_account', email: 'x@example.com' }, 'no such account; x@example.com'],
      [{ count: 1, actorId: 'u1' }, '1 session'],
      [{ by: 'admin', sessionsRevoked: 3 }, '3 sessions ended; set by an administrator'],
      [
        { action: 'admin_login', scope: 'account', retryAfterSeconds: 30 },
        'admin panel sign-in; limited per account; retry after 30 s',
      ],
      [{ somethingNew: 'value', flag: true }, 'somethingNew: value; flag: true'],
      [{}, ''],
    ]
    for (const [detail, text] of cases) expect(describeDetail(event(detail), names)).toBe(text)
  })
})

describe('admin views: small helpers', () => {
  it('plural, e-mail break opportunities, chart scale', () => {
    expect(plural(1, 'session')).toBe('1 session')
    expect(plural(0, 'session')).toBe('0 sessions')
    expect(plural(2, 'match', 'matches')).toBe('2 matches')
    expect(emailText('a.b@c.d').value).toBe(
      '<span class="email">a<wbr />.b<wbr />@c<wbr />.d</span>',
    )
    expect(emailText('<x>@y').value).toBe('<span class="email">&lt;x&gt;<wbr />@y</span>')
    expect([1, 2, 3, 6, 11, 51, 999].map(niceCeiling)).toEqual([1, 2, 5, 10, 20, 100, 1000])
  })
})
