/*
 * The first-start setup link (GET/POST /setup?token=): creates the first administrator once and
 * signs that person in. The link is a record of the admin session store (see ../setup.ts).
 */
import { createCSRFToken } from '../../../core/csrf.js'
import type { Session } from '../../../core/session-manager.js'
import { anonymousPage, requestContext, send, type AdminApp, type AdminKit } from '../context.js'
import { readForm, requireSameSite } from '../forms.js'
import { SETUP_KIND } from '../setup.js'
import { messagePage } from '../views/layout.js'
import { setupPage } from '../views/setup.js'

const DEAD_SETUP_LINK =
  'This setup link is invalid, already used or expired, or an administrator already exists. Sign in, or run `tessera user create --admin`.'

/** GET and POST `/setup`. */
export function setupRoutes(app: AdminApp, kit: AdminKit): void {
  const { adminSessions, auth, keyring } = kit.deps
  const { accounts } = auth
  const { queries } = kit
  let setupRunning = false

  async function setupSession(token: string | undefined): Promise<Session | null> {
    if (token === undefined) return null
    const found = await adminSessions.validateToken(token)
    if (found === null || found.session.userId !== null || found.session.data.kind !== SETUP_KIND) {
      return null
    }
    return found.session
  }

  app.get('/setup', async (c) => {
    const token = c.req.query('token')
    const session = await setupSession(token)
    if (session === null || token === undefined || (await queries.countAdmins()) > 0) {
      return send(
        c,
        messagePage(anonymousPage(kit, c, ''), 'Setup link not valid', DEAD_SETUP_LINK),
        404,
      )
    }
    const page = anonymousPage(kit, c, createCSRFToken(keyring, `admin-setup:${session.id}`))
    return send(c, setupPage(page, { token }))
  })

  app.post('/setup', async (c) => {
    const form = await readForm(c)
    const token = form.get('token') ?? ''
    const session = await setupSession(token)
    if (session === null || (await queries.countAdmins()) > 0) {
      return send(
        c,
        messagePage(anonymousPage(kit, c, ''), 'Setup link not valid', DEAD_SETUP_LINK),
        404,
      )
    }
    requireSameSite(kit, c, form, `admin-setup:${session.id}`)
    const again = (status: 400 | 409, error: string): Response =>
      send(
        c,
        setupPage(anonymousPage(kit, c, createCSRFToken(keyring, `admin-setup:${session.id}`)), {
          token,
          email: form.get('email') ?? '',
          error,
        }),
        status,
      )
    const email = form.get('email') ?? ''
    const password = form.get('password') ?? ''
    if (password !== (form.get('password2') ?? '')) return again(400, 'The two passwords differ.')
    // One creation at a time in this process, re-checked after the wait.
    if (setupRunning) return again(409, 'Another setup is running; try again.')
    setupRunning = true
    try {
      if ((await queries.countAdmins()) > 0) {
        return send(
          c,
          messagePage(anonymousPage(kit, c, ''), 'Setup link not valid', DEAD_SETUP_LINK),
          404,
        )
      }
      const ctx = requestContext(kit, c)
      const created = await auth.createUser({ email, password, isAdmin: true }, ctx)
      if (!created.ok) return again(created.code === 'conflict' ? 409 : 400, created.message)
      // SECURITY: single use: the setup record is deleted once the administrator exists.
      await adminSessions.revoke(session)
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
      c.header('Set-Cookie', issued.setCookie, { append: true })
      return c.redirect(kit.base, 303)
    } finally {
      setupRunning = false
    }
  })
}
