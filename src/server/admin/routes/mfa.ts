/*
 * Second factors in the panel (issue 13): the gate that keeps an administrator without a factor
 * on the enrolment page when TESSERA_ADMIN_MFA=required, the enrolment itself (QR code, confirm,
 * recovery codes shown once), and an administrator's reset of another user's factors.
 */
import type { MiddlewareHandler } from 'hono'
import {
  actionContext,
  pageContext,
  send,
  type AdminApp,
  type AdminEnv,
  type AdminKit,
} from '../context.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, param, postAction } from '../forms.js'
import { enrolPage, mfaPage, recoveryCodesPage } from '../views/mfa.js'
import { findUserOr404, userPath } from './users.js'

// Pages an administrator without a factor may still reach under `required`.
const OPEN_PATHS = new Set(['/mfa', '/mfa/totp', '/mfa/totp/confirm', '/logout'])

/**
 * SECURITY: with `required`, an administrator without a second factor reaches no page but
 * enrolment and sign-out (ASVS 2.1 / 4.3.1: MFA on administrative interfaces).
 */
export function mfaGate(kit: AdminKit): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const mfa = kit.deps.mfa
    const path = c.req.path.slice(kit.base.length) || '/'
    if (mfa === undefined || !mfa.required || OPEN_PATHS.has(path)) return next()
    const methods = await mfa.registry.methodsOf(c.get('admin').id)
    if (methods.length > 0) return next()
    return c.redirect(`${kit.base}/mfa`, 303)
  }
}

/** GET /mfa and the enrolment and recovery-code actions of the signed-in administrator. */
export function mfaRoutes(app: AdminApp, kit: AdminKit): void {
  const mfa = kit.deps.mfa
  if (mfa === undefined) return
  const { factors } = mfa

  app.get('/mfa', async (c) => {
    const flash = await takeFlash(kit, c)
    const status = await factors.status(c.get('admin').id)
    const page = pageContext(kit, c, csrfFor(c), flash)
    return send(c, mfaPage(page, { status, required: mfa.required }))
  })

  postAction(app, kit, '/mfa/totp', async (c) => {
    const admin = c.get('admin')
    const started = await factors.startTOTP(admin, actionContext(kit, c))
    if (!started.ok) {
      return redirectWith(kit, c, '/mfa', { kind: 'error', text: started.message })
    }
    const page = pageContext(kit, c, csrfFor(c))
    return send(c, enrolPage(page, { secret: started.secret, qrSvg: started.qrSvg }))
  })

  postAction(app, kit, '/mfa/totp/confirm', async (c, form) => {
    const admin = c.get('admin')
    const confirmed = await factors.confirmTOTP(
      admin.id,
      form.get('code') ?? '',
      actionContext(kit, c),
    )
    if (!confirmed.ok) {
      return redirectWith(kit, c, '/mfa', {
        kind: 'error',
        text:
          confirmed.code === 'not_found'
            ? 'No set-up is in progress; start again.'
            : 'The code is not correct; start the set-up again and scan the new code.',
      })
    }
    // The session continues at two factors, under a new token.
    const session = c.get('adminSession')
    const amr = [...new Set([...session.amr, 'otp' as const, 'mfa' as const])]
    const issued = await kit.deps.adminSessions.regenerate(session, {
      auth: { time: kit.now(), aal: 2, amr },
    })
    if (issued !== null) c.header('Set-Cookie', issued.setCookie, { append: true })
    const page = pageContext(kit, c, '')
    return send(c, recoveryCodesPage(page, confirmed.recoveryCodes))
  })

  postAction(app, kit, '/mfa/recovery-codes', async (c) => {
    const admin = c.get('admin')
    if (!(await factors.hasTOTP(admin.id))) {
      return redirectWith(kit, c, '/mfa', { kind: 'error', text: 'Set up an authenticator first.' })
    }
    const codes = await factors.regenerateRecoveryCodes(admin.id, actionContext(kit, c))
    return send(c, recoveryCodesPage(pageContext(kit, c, csrfFor(c)), codes))
  })

  postAction(app, kit, '/users/:id/mfa/reset', async (c) => {
    const user = await findUserOr404(kit, param(c, 'id'))
    // Audited as mfa_reset with the acting administrator (actorId).
    const removed = await factors.reset(user.id, actionContext(kit, c))
    return redirectWith(kit, c, userPath(user), {
      kind: 'ok',
      text:
        removed.totp || removed.recoveryCodes > 0
          ? `Removed the second factors of ${user.email}; they sign in with their password and may set up a new one.`
          : `${user.email} had no second factor.`,
    })
  })
}
