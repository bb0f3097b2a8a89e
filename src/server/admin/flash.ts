/*
 * Post/redirect/get: an action keeps its message in the admin session and redirects; the next
 * page shows it once. Kept in the session, not the URL, so a crafted link cannot show a message.
 */
import type { AdminContext, AdminKit } from './context.js'
import type { Flash } from './views/layout.js'

/** Keeps `flash` for the next page and redirects (303) to `path` under the panel. */
export async function redirectWith(
  kit: AdminKit,
  c: AdminContext,
  path: string,
  flash: Flash,
): Promise<Response> {
  await kit.deps.adminSessions.update(c.get('adminSession'), {
    flash: { kind: flash.kind, text: flash.text },
  })
  return c.redirect(`${kit.base}${path}`, 303)
}

/** The message kept by the previous action, removed from the session; undefined when none. */
export async function takeFlash(kit: AdminKit, c: AdminContext): Promise<Flash | undefined> {
  const session = c.get('adminSession')
  const stored = session.data.flash
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) return undefined
  const { kind, text } = stored as { kind?: unknown; text?: unknown }
  await kit.deps.adminSessions.update(session, { flash: undefined })
  if ((kind !== 'ok' && kind !== 'error') || typeof text !== 'string') return undefined
  return { kind, text }
}
