/*
 * Reading the panel's form posts: the body (url-encoded, 64 KiB at most), the cross-site rule with
 * the form's CSRF token, and the small parsers routes share (ids, page numbers, codename lists).
 */
import { isPermissionCodename } from '../../auth/accounts.js'
import type { Context } from 'hono'
import type { User } from '../../auth/accounts.js'
import { csrfToken, type TesseraEnv } from '../../adapters/hono.js'
import { checkCrossSite, verifyCSRFToken } from '../../core/csrf.js'
import type { AdminApp, AdminContext, AdminKit } from './context.js'
import { TesseraError } from '../../core/errors.js'
import { redirectWith } from './flash.js'
import { readFormBody } from '../body.js'

/** A route parameter, `''` when absent. */
export function param(c: AdminContext, name: string): string {
  return c.req.param(name) ?? ''
}

/** A `?page=` value: a positive integer, else 1. */
export function pageNumber(value: string | undefined): number {
  if (value === undefined || !/^[1-9][0-9]{0,5}$/.test(value)) return 1
  return Number(value)
}

/** Codenames from a textarea (split on spaces, commas and lines), or the first bad one. */
export function codenameList(
  text: string,
): { ok: true; codenames: string[] } | { ok: false; bad: string } {
  const codenames = [
    ...new Set(
      text
        .split(/[\s,]+/)
        .map((item) => item.trim())
        .filter((item) => item !== ''),
    ),
  ]
  for (const codename of codenames) {
    if (!isPermissionCodename(codename)) return { ok: false, bad: codename }
  }
  return { ok: true, codenames }
}

/**
 * The fields of a form post, through the server's one body reader (`readFormBody`), read once
 * per request however often it is called.
 * @throws TesseraError `unsupported_media_type` (415) for another content type, `payload_too_large` (413) over 64 KiB, `invalid_request` (400) for a body cut off or malformed
 */
export function readForm(c: AdminContext): Promise<URLSearchParams> {
  return readFormBody(c.req.raw)
}

/**
 * SECURITY: every state-changing request must pass both the cross-site rule (Sec-Fetch-Site,
 * Origin) and carry the CSRF token of its form, bound to `binding` (ASVS 4.2.2, 13.2.3).
 * @throws TesseraError `csrf_failed` (403) when either fails
 */
export function requireSameSite(
  kit: AdminKit,
  c: AdminContext,
  form: URLSearchParams,
  binding: string,
): void {
  const token = form.get('_csrf')
  const valid = verifyCSRFToken(kit.deps.keyring, binding, token)
  const decision = checkCrossSite({
    method: c.req.method,
    headers: { secFetchSite: c.req.header('sec-fetch-site'), origin: c.req.header('origin') },
    trustedOrigins: kit.trusted,
    hasSessionCookie: true,
    csrfTokenValid: valid,
  })
  if (!decision.allowed) {
    throw new TesseraError('csrf_failed', `${decision.message} (csrf_failed)`)
  }
  if (!valid) {
    throw new TesseraError(
      'csrf_failed',
      'The form is missing its CSRF token or the token is invalid; reload the page and try again (csrf_failed).',
    )
  }
}

/**
 * The CSRF token of the forms of a signed-in administrator's pages: core's form token, bound to
 * `admin:<session id>` (the request authentication's `csrf.scope`).
 */
export function csrfFor(c: AdminContext): string {
  return csrfToken(c as unknown as Context<TesseraEnv<User>>)
}

/**
 * Registers a POST action of a signed-in administrator. The panel's request authentication (core's,
 * `guard.ts`) has already refused it unless it passed the Origin / `Sec-Fetch-Site` rule and
 * carried the form token of the admin session; here the form is read for `handler`.
 */
export function postAction(
  app: AdminApp,
  kit: AdminKit,
  path: string,
  handler: (c: AdminContext, form: URLSearchParams) => Promise<Response>,
): void {
  app.post(path, async (c) => {
    return handler(c, await readForm(c))
  })
}

/** What {@link replaceCodenames} changes: a user's direct grants or a group's. */
export interface CodenameSet {
  /** Where to go back to, under the panel. */
  back: string
  /** Whose set it is, for the message: `Direct permissions of a@example.com`. */
  label: string
  current(): Promise<string[]>
  grant(codename: string): Promise<void>
  revoke(codename: string): Promise<void>
}

/**
 * Replaces a set of permission codenames with the list in the form's `permissions` field: grants
 * what is new, revokes what is gone, and redirects with a message. A malformed codename changes
 * nothing.
 */
export async function replaceCodenames(
  kit: AdminKit,
  c: AdminContext,
  form: URLSearchParams,
  set: CodenameSet,
): Promise<Response> {
  const parsed = codenameList(form.get('permissions') ?? '')
  if (!parsed.ok) {
    return redirectWith(kit, c, set.back, {
      kind: 'error',
      text: `“${parsed.bad.slice(0, 100)}” is not a permission codename (app.action, lower case); nothing was changed.`,
    })
  }
  const current = await set.current()
  for (const codename of parsed.codenames) {
    if (!current.includes(codename)) await set.grant(codename)
  }
  for (const codename of current) {
    if (!parsed.codenames.includes(codename)) await set.revoke(codename)
  }
  return redirectWith(kit, c, set.back, {
    kind: 'ok',
    text: `${set.label}: ${parsed.codenames.length === 0 ? 'none' : parsed.codenames.join(', ')}.`,
  })
}
