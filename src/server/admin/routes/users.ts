/*
 * Users: the list with search and paging, creating a user, one user's page, and the actions on a
 * user (disable, enable, administrator flag, delete, password reset mail, groups, direct
 * permissions).
 */
import type { User } from '../../../auth/accounts.js'
import {
  actionContext,
  pageContext,
  send,
  type AdminApp,
  type AdminContext,
  type AdminKit,
} from '../context.js'
import { TesseraError } from '../../../core/errors.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, pageNumber, param, postAction, replaceCodenames } from '../forms.js'
import type { Flash } from '../views/layout.js'
import { userPage, usersPage } from '../views/users.js'

const PAGE_SIZE = 25
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/

/** True for a string shaped like a user id (checked before any lookup). */
export function isUserId(value: string): boolean {
  return USER_ID.test(value)
}

/**
 * The user with id `id`.
 * @throws TesseraError `not_found` (404) when there is none (or the id is malformed)
 */
export async function findUserOr404(kit: AdminKit, id: string): Promise<User> {
  const user = isUserId(id) ? await kit.deps.auth.accounts.findUserById(id) : null
  if (user === null) throw new TesseraError('not_found', 'There is no user with this id.')
  return user
}

/** The path of a user's page under the panel. */
export function userPath(user: User): string {
  return `/users/${encodeURIComponent(user.id)}`
}

/** The users routes. */
export function userRoutes(app: AdminApp, kit: AdminKit): void {
  const { auth, appSessions } = kit.deps
  const { accounts } = auth

  async function renderUsers(
    c: AdminContext,
    status: 200 | 400 | 409,
    extra: { createEmail?: string; createError?: string; flash?: Flash | undefined },
  ): Promise<Response> {
    const search = (c.req.query('q') ?? '').slice(0, 320)
    const pageNo = pageNumber(c.req.query('page'))
    const { users, total } = await accounts.listUsers({
      search,
      limit: PAGE_SIZE,
      offset: (pageNo - 1) * PAGE_SIZE,
    })
    const page = pageContext(kit, c, csrfFor(c), extra.flash)
    const data = {
      users,
      total,
      page: pageNo,
      pageSize: PAGE_SIZE,
      search,
      passwordRules: kit.passwordRules,
      ...(extra.createEmail === undefined ? {} : { createEmail: extra.createEmail }),
      ...(extra.createError === undefined ? {} : { createError: extra.createError }),
    }
    return send(c, usersPage(page, data, kit.now()), status)
  }

  function refuseSelf(c: AdminContext, user: User, what: string): Promise<Response> | null {
    if (user.id !== c.get('admin').id) return null
    return redirectWith(kit, c, userPath(user), {
      kind: 'error',
      text: `You cannot ${what} your own account here.`,
    })
  }

  app.get('/users', async (c) => renderUsers(c, 200, { flash: await takeFlash(kit, c) }))

  postAction(app, kit, '/users', async (c, form) => {
    const email = form.get('email') ?? ''
    const password = form.get('password') ?? ''
    const isAdmin = form.get('isAdmin') === '1'
    if (email === '' || password === '') {
      return renderUsers(c, 400, {
        createEmail: email,
        createError: 'E-mail and password are required.',
      })
    }
    const created = await auth.createUser({ email, password, isAdmin }, actionContext(kit, c))
    if (!created.ok) {
      return renderUsers(c, created.code === 'conflict' ? 409 : 400, {
        createEmail: email,
        createError: created.message,
      })
    }
    return redirectWith(kit, c, userPath(created.user), {
      kind: 'ok',
      text: `Created ${isAdmin ? 'administrator' : 'user'} ${created.user.email}.`,
    })
  })

  app.get('/users/:id', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const flash = await takeFlash(kit, c)
    const [groups, memberOf, direct, effective, sessions] = await Promise.all([
      accounts.listGroups(),
      accounts.listUserGroups(user.id),
      accounts.listDirectPermissions(user.id),
      accounts.getUserPermissions(user.id),
      appSessions.list(user.id),
    ])
    const page = pageContext(kit, c, csrfFor(c), flash)
    return send(
      c,
      userPage(
        page,
        {
          user,
          groups,
          memberOf: new Set(memberOf.map((g) => g.id)),
          directPermissions: direct,
          effectivePermissions: effective,
          sessionCount: sessions.length,
          isSelf: user.id === c.get('admin').id,
        },
        kit.now(),
      ),
    )
  })

  postAction(app, kit, '/users/:id/disable', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const refused = refuseSelf(c, user, 'disable')
    if (refused !== null) return refused
    await accounts.disableUser(user.id, actionContext(kit, c))
    return redirectWith(kit, c, userPath(user), {
      kind: 'ok',
      text: `Disabled ${user.email}; their sessions were ended.`,
    })
  })

  postAction(app, kit, '/users/:id/enable', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    await accounts.enableUser(user.id, actionContext(kit, c))
    return redirectWith(kit, c, userPath(user), { kind: 'ok', text: `Enabled ${user.email}.` })
  })

  postAction(app, kit, '/users/:id/admin', async (c, form) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const refused = refuseSelf(c, user, 'change the administrator flag of')
    if (refused !== null) return refused
    const isAdmin = form.get('isAdmin') === '1'
    await accounts.setAdmin(user.id, { isAdmin }, actionContext(kit, c))
    return redirectWith(kit, c, userPath(user), {
      kind: 'ok',
      text: isAdmin
        ? `${user.email} is now an administrator.`
        : `${user.email} is no longer an administrator.`,
    })
  })

  postAction(app, kit, '/users/:id/delete', async (c, form) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const refused = refuseSelf(c, user, 'delete')
    if (refused !== null) return refused
    if (form.get('confirm') !== 'yes') {
      return redirectWith(kit, c, userPath(user), {
        kind: 'error',
        text: 'Tick “I am sure” to delete the user.',
      })
    }
    await accounts.deleteUser(user.id, actionContext(kit, c))
    return redirectWith(kit, c, '/users', { kind: 'ok', text: `Deleted ${user.email}.` })
  })

  postAction(app, kit, '/users/:id/reset', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    if (!user.isActive) {
      return redirectWith(kit, c, userPath(user), {
        kind: 'error',
        text: `${user.email} is disabled; enable the account before sending a reset.`,
      })
    }
    const sent = await auth.requestPasswordReset({ email: user.email }, actionContext(kit, c))
    if (sent.rateLimited) {
      // The same per-account and per-IP limit as POST /auth/password-reset/request.
      return redirectWith(kit, c, userPath(user), {
        kind: 'error',
        text: `Too many reset e-mails for ${user.email} lately; nothing was sent. Try again later.`,
      })
    }
    return redirectWith(kit, c, userPath(user), {
      kind: 'ok',
      text: `A password reset e-mail is on its way to ${user.email}.`,
    })
  })

  postAction(app, kit, '/users/:id/groups', async (c, form) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const wanted = new Set(form.getAll('group'))
    const all = await accounts.listGroups()
    const known = new Set(all.map((g) => g.id))
    for (const id of wanted) {
      if (!known.has(id)) {
        return redirectWith(kit, c, userPath(user), {
          kind: 'error',
          text: 'One of the chosen groups no longer exists; nothing was changed.',
        })
      }
    }
    const current = new Set((await accounts.listUserGroups(user.id)).map((g) => g.id))
    const ctx = actionContext(kit, c)
    let changes = 0
    for (const id of wanted) {
      if (!current.has(id)) {
        await accounts.addUserToGroup(user.id, id, ctx)
        changes++
      }
    }
    for (const id of current) {
      if (!wanted.has(id)) {
        await accounts.removeUserFromGroup(user.id, id, ctx)
        changes++
      }
    }
    const names = all.filter((g) => wanted.has(g.id)).map((g) => g.name)
    return redirectWith(kit, c, userPath(user), {
      kind: 'ok',
      text:
        changes === 0
          ? 'Groups unchanged.'
          : `Groups of ${user.email}: ${names.length === 0 ? 'none' : names.join(', ')}.`,
    })
  })

  postAction(app, kit, '/users/:id/permissions', async (c, form) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    const ctx = actionContext(kit, c)
    return replaceCodenames(kit, c, form, {
      back: userPath(user),
      label: `Direct permissions of ${user.email}`,
      current: () => accounts.listDirectPermissions(user.id),
      grant: (codename) => accounts.grantPermission(user.id, codename, ctx),
      revoke: (codename) => accounts.revokePermission(user.id, codename, ctx),
    })
  })
}
