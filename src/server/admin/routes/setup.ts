/*
 * The first-start setup link (GET/POST /setup?token=): creates the first administrator once and
 * signs that person in. The link is a record of the admin session store (see ../setup.ts); a use
 * claims it by compare-and-set before creating anyone, so parallel uses on several processes
 * create exactly one administrator.
 */
import { createCSRFToken } from '../../../core/csrf.js'
import type { Session } from '../../../core/session-manager.js'
import {
  anonymousPage,
  requestContext,
  send,
  type AdminApp,
  type AdminContext,
  type AdminKit,
} from '../context.js'
import { readForm, requireSameSite } from '../forms.js'
import { SETUP_KIND } from '../setup.js'
import { messagePage } from '../views/layout.js'
import { setupPage } from '../views/setup.js'

const DEAD_SETUP_LINK =
  'This setup link is invalid, already used or expired, or an administrator already exists. Sign in, or run `tessera user create --admin`.'

/** GET and POST `/setup`. */
export function setupRoutes(app: AdminApp, kit: AdminKit): void {
  const { adminSessions, auth, keyring } = kit.deps
  const { accounts, audit } = auth

  async function setupSession(token: string | undefined): Promise<Session | null> {
    if (token === undefined) return null
    const found = await adminSessions.validateToken(token)
    if (found === null || found.session.userId !== null || found.session.data.kind !== SETUP_KIND) {
      return null
    }
    return found.session
  }

  function deadLink(c: AdminContext): Response {
    return send(
      c,
      messagePage(anonymousPage(kit, c, ''), 'Setup link not valid', DEAD_SETUP_LINK),
      404,
    )
  }

  app.get('/setup', async (c) => {
    const token = c.req.query('token')
    const session = await setupSession(token)
    if (session === null || token === undefined || (await accounts.countAdmins()) > 0) {
      return deadLink(c)
    }
    const page = anonymousPage(kit, c, createCSRFToken(keyring, `admin-setup:${session.id}`))
    return send(c, setupPage(page, { token, rules: kit.passwordRules }))
  })

  app.post('/setup', async (c) => {
    const form = await readForm(c)
    const token = form.get('token') ?? ''
    const session = await setupSession(token)
    if (session === null || (await accounts.countAdmins()) > 0) return deadLink(c)
    requireSameSite(kit, c, form, `admin-setup:${session.id}`)
    const again = (status: 400 | 409, error: string): Response =>
      send(
        c,
        setupPage(anonymousPage(kit, c, createCSRFToken(keyring, `admin-setup:${session.id}`)), {
          token,
          rules: kit.passwordRules,
          email: form.get('email') ?? '',
          error,
        }),
        status,
      )
    const email = form.get('email') ?? ''
    const password = form.get('password') ?? ''
    if (password !== (form.get('password2') ?? '')) return again(400, 'The two passwords differ.')

    // SECURITY: one setup link, one administrator (API.md): the link is claimed in the store by
    // compare-and-set before anyone is created; a use that loses gets the dead-link page.
    const claimed = await adminSessions.claimSetupLink(token)
    if (claimed === null) return deadLink(c)
    const ctx = requestContext(kit, c)
    let created
    try {
      created =
        (await accounts.countAdmins()) > 0
          ? null
          : await auth.createUser({ email, password, isAdmin: true }, ctx)
    } catch (error) {
      // The store or database failed mid-way: the link stays usable for another try.
      await adminSessions.releaseSetupLink(token).catch(() => undefined)
      throw error
    }
    if (created === null) {
      await adminSessions.revoke(claimed)
      return deadLink(c)
    }
    if (!created.ok) {
      await adminSessions.releaseSetupLink(token)
      return again(created.code === 'conflict' ? 409 : 400, created.message)
    }
    // Single use: the setup record is deleted once the administrator exists.
    await adminSessions.revoke(claimed)
    const meta = {
      ...(ctx.ip === undefined ? {} : { ip: ctx.ip }),
      ...(ctx.userAgent === undefined ? {} : { userAgent: ctx.userAgent }),
    }
    const issued = await adminSessions.create(created.user.id, {
      meta,
      data: {
        flash: {
          kind: 'ok',
          text: `Administrator ${created.user.email} created; you are signed in.`,
        },
      },
    })
    await accounts.recordLogin(created.user.id)
    await audit.record({
      type: 'login',
      outcome: 'success',
      userId: created.user.id,
      ...ctx,
      detail: { panel: 'admin', via: 'setup_link' },
    })
    c.header('Set-Cookie', issued.setCookie, { append: true })
    return c.redirect(kit.base, 303)
  })
}
