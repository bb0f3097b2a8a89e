import { createCookiePolicy } from '../core/cookie-policy.js'
import { readCookie, serializeCookie, serializeDeletedCookie } from '../core/cookie.js'
import type { TrustedOrigins } from '../core/csrf.js'
import { TesseraError } from '../core/errors.js'
import type { Keyring } from '../core/keyring.js'
import { sealValue, unsealValue } from '../core/sealing.js'
import type { Session } from '../core/session-manager.js'
import type { Accounts } from './accounts.js'
import type { ActionLimiter, ActionPolicy } from './action-limiter.js'
import type { AuditLog, RequestContext } from './audit.js'
import { parseEmail } from './email.js'
import type { Identities, Identity, ProviderIdentity } from './identities.js'
import {
  IdentityProviderError,
  type CallbackRefusalReason,
  type IdentityProviders,
} from './identity-providers.js'
import type { SecondFactorRequired, SignIn, SignInOptions, SignInSuccess } from './sign-in.js'

/** Why a callback signed nobody in: the provider's reasons, plus the account rules. */
export type IdentityRefusalReason =
  | CallbackRefusalReason
  | 'unknown_provider'
  | 'signup_closed'
  | 'email_missing'
  /** A new identity whose e-mail an existing account has: never merged (account takeover). */
  | 'email_in_use'
  /** A link asked for by one user, come back in a browser signed in as another (or none). */
  | 'link_session_mismatch'
  /** The identity is linked to another account. */
  | 'identity_in_use'
  | 'account_refused'
  /** Too many callbacks from this client (each one costs a request to the provider). */
  | 'rate_limited'

/** A refused callback: the error page's message and, for the log, the reason. */
export interface IdentityRefusal {
  ok: false
  code: 'refused'
  reason: IdentityRefusalReason
  /** Safe to show the person: names nothing about other accounts. */
  message: string
  /** Clears the state cookie. */
  clearCookie: string
  /** For `rate_limited`: seconds until a callback from this client is admitted again. */
  retryAfterSeconds?: number
}

/** The action name of callbacks in an {@link ActionLimiter}. */
export const IDENTITY_CALLBACK_ACTION = 'identity_callback'

/**
 * The default limit of callbacks: 30 per client IP per 15 minutes. Only callbacks that carry a
 * valid state cookie count (the others are refused before any request to the provider).
 */
export const IDENTITY_CALLBACK_POLICY: Readonly<ActionPolicy> = Object.freeze({
  ip: { limit: 30, window: 900 },
})

/** A callback that ended well, and where to send the browser. */
export type IdentityCallbackResult =
  | {
      ok: true
      kind: 'signed_in'
      signedIn: SignInSuccess
      identity: Identity
      returnTo: string
      clearCookie: string
    }
  | { ok: true; kind: 'linked'; identity: Identity; returnTo: string; clearCookie: string }
  | {
      ok: false
      code: 'second_factor_required'
      secondFactor: SecondFactorRequired
      identity: Identity
      returnTo: string
      clearCookie: string
    }
  | IdentityRefusal

/** What {@link createIdentitySignIn} is built on. */
export interface IdentitySignInDeps {
  providers: IdentityProviders
  identities: Identities
  accounts: Pick<Accounts, 'findUserByEmail'>
  /** The one sign-in pipeline: an identity is a first factor (`amr: ['fed']`). */
  signIn: Pick<SignIn, 'afterFirstFactor'>
  audit: AuditLog
  /** Seals the state cookie (purpose `oidc-state`). */
  keyring: Keyring
  /** The application's public URL: relative `returnTo` paths are on its origin. */
  publicUrl: string
  /** Origins an absolute `returnTo` may point to (the public origin is always one). */
  trustedOrigins: TrustedOrigins
  /** Whether a new identity may create an account. @default 'open' */
  signup?: 'open' | 'closed' | undefined
  /** `Secure` and the `__Host-` prefix on the state cookie (https). @default false */
  secure?: boolean | undefined
  /** Seconds the state cookie (the whole round trip to the provider) lives. @default 600 */
  stateTtl?: number | undefined
  /**
   * Called for an account created from an identity whose provider said `email_verified: true`
   * (until accounts record verification themselves). @default none
   */
  markEmailVerified?: ((userId: string) => Promise<void>) | undefined
  /**
   * Limits callbacks per client IP (action {@link IDENTITY_CALLBACK_ACTION}, e.g. with
   * {@link IDENTITY_CALLBACK_POLICY}): each one makes the server call the provider's token
   * endpoint. @default none
   */
  limiter?: Pick<ActionLimiter, 'check'> | undefined
  /** @default Date.now */
  now?: (() => number) | undefined
}

/** Options of {@link IdentitySignIn.begin}. */
export interface BeginOptions {
  /** Where to go afterwards: a path, or a URL on a trusted origin; anything else is ignored. */
  returnTo?: string | undefined
  /** Link the identity to this (signed-in) user instead of signing in with it. */
  linkUserId?: string | undefined
}

/** The request of a callback. */
export interface CallbackRequest extends RequestContext {
  /** The callback URL as requested (only its query is used; the origin comes from `publicUrl`). */
  url: URL
  /** The request's `Cookie` header. */
  cookieHeader: string | null | undefined
  /** The request's session, if it has one: ended on sign-in, the linking user on a link. */
  session?: Session | undefined
  /** Passed to the pipeline (a second session manager, `require`, ...). */
  signIn?: Pick<SignInOptions, 'sessions' | 'require' | 'data'> | undefined
}

/** Sign-in and linking with identity providers, over the sign-in pipeline. */
export interface IdentitySignIn {
  /**
   * Starts a sign-in (or a link): the provider URL to redirect to and the `Set-Cookie` of the
   * sealed state (state, nonce, PKCE verifier, `returnTo`, the linking user).
   * @throws TesseraError `not_found` for an unknown provider, `unavailable` when it cannot be reached
   */
  begin(provider: string, options?: BeginOptions): Promise<{ location: string; setCookie: string }>
  /** Finishes one: the session (or a second factor to ask for), the linked identity, or a refusal. */
  callback(provider: string, request: CallbackRequest): Promise<IdentityCallbackResult>
  /** The state cookie's name (`tessera_oidc`, `__Host-tessera_oidc` on https). */
  readonly cookieName: string
}

interface FlowState {
  p: string
  s: string
  n?: string
  v: string
  r: string
  l?: string
}

const PURPOSE = 'oidc-state'
const REFUSED_MESSAGES: Record<IdentityRefusalReason, string> = {
  state_missing: 'This sign-in was not started here, or took too long. Start again.',
  state_mismatch: 'This sign-in does not match the one started in this browser. Start again.',
  provider_error: 'The identity provider did not sign you in.',
  issuer_mismatch: 'The answer did not come from the identity provider this sign-in went to.',
  nonce_mismatch: 'The identity provider answered for another sign-in. Start again.',
  id_token_invalid: 'The identity provider’s answer could not be verified.',
  token_exchange_failed: 'The identity provider did not confirm the sign-in. Start again.',
  userinfo_failed: 'The identity provider did not say who you are.',
  provider_unavailable: 'The identity provider cannot be reached. Try again later.',
  unknown_provider: 'There is no such identity provider here.',
  signup_closed: 'There is no account for this identity, and new accounts cannot be made here.',
  email_missing: 'The identity provider did not give an e-mail address for a new account.',
  email_in_use:
    'An account with this e-mail address already exists. Sign in to it, then link this identity from your account.',
  link_session_mismatch: 'Sign in to the account you want to link, then start again.',
  identity_in_use: 'This identity is already linked to another account.',
  account_refused: 'This account cannot sign in here.',
  rate_limited: 'Too many sign-in attempts from here. Wait a few minutes and start again.',
}

/**
 * `returnTo` if it is a path of this site or a URL on a trusted origin, else `/`.
 * SECURITY: no open redirect (ASVS 5.1.5): `//host`, `/\host`, other schemes and untrusted
 * origins are ignored.
 */
export function safeReturnTo(
  value: string | undefined | null,
  publicUrl: string,
  trustedOrigins: TrustedOrigins,
): string {
  if (typeof value !== 'string' || value === '' || value.length > 2048) return '/'
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return '/'
  const publicOrigin = new URL(publicUrl).origin
  if (value.startsWith('/')) {
    if (value.startsWith('//')) return '/'
    let url: URL
    try {
      url = new URL(value, publicOrigin)
    } catch {
      return '/'
    }
    const path = `${url.pathname}${url.search}${url.hash}`
    // `/.//evil.example` normalises to `//evil.example`: a path must still be one after parsing.
    return url.origin === publicOrigin && !path.startsWith('//') ? path : '/'
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return '/'
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return '/'
  if (url.username !== '' || url.password !== '') return '/'
  return url.origin === publicOrigin || trustedOrigins.origins.has(url.origin) ? url.href : '/'
}

function parseFlow(text: string): FlowState | null {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof value !== 'object' || value === null) return null
  const flow = value as Record<string, unknown>
  const optional = (key: string): boolean =>
    flow[key] === undefined || typeof flow[key] === 'string'
  if (
    typeof flow.p !== 'string' ||
    typeof flow.s !== 'string' ||
    typeof flow.v !== 'string' ||
    typeof flow.r !== 'string' ||
    !optional('n') ||
    !optional('l')
  ) {
    return null
  }
  return value as FlowState
}

/**
 * Sign-in with identity providers on the one pipeline: `begin` sends the browser to the
 * provider with a sealed state cookie; `callback` checks the answer (through the provider's
 * library), then signs in the identity's account, creates one (signup open, e-mail not taken),
 * or links the identity to the signed-in user who asked for it. Every refusal is audited with
 * its reason.
 *
 * @example
 * ```ts
 * const idp = createIdentitySignIn({ providers, identities, accounts, signIn, audit, keyring,
 *   publicUrl, trustedOrigins })
 * const { location, setCookie } = await idp.begin('google', { returnTo: '/app' })
 * ```
 */
export function createIdentitySignIn(deps: IdentitySignInDeps): IdentitySignIn {
  const now = deps.now ?? Date.now
  const ttl = deps.stateTtl ?? 600
  const policy = createCookiePolicy(
    'tessera_oidc',
    { secure: deps.secure ?? false },
    'identity sign-in',
  )
  const clearCookie = serializeDeletedCookie(policy.name, policy.attributes)

  async function refuse(
    provider: string,
    reason: IdentityRefusalReason,
    request: CallbackRequest,
    extra: { userId?: string | null; cause?: unknown; retryAfterSeconds?: number } = {},
  ): Promise<IdentityRefusal> {
    await deps.audit.record({
      type: 'login',
      outcome:
        reason === 'signup_closed' || reason === 'account_refused' || reason === 'rate_limited'
          ? 'denied'
          : 'failure',
      userId: extra.userId ?? null,
      ip: request.ip,
      userAgent: request.userAgent,
      detail: { method: 'fed', provider: provider.slice(0, 32), reason },
    })
    return {
      ok: false,
      code: 'refused',
      reason,
      message: REFUSED_MESSAGES[reason],
      clearCookie,
      ...(extra.retryAfterSeconds === undefined
        ? {}
        : { retryAfterSeconds: extra.retryAfterSeconds }),
    }
  }

  function readFlow(request: CallbackRequest): FlowState | null {
    const sealed = readCookie(request.cookieHeader, policy.name)
    if (sealed === undefined) return null
    const opened = unsealValue(deps.keyring, PURPOSE, sealed, { now })
    return opened === null ? null : parseFlow(opened.value)
  }

  async function signInWith(
    identity: Identity,
    given: ProviderIdentity,
    returnTo: string,
    request: CallbackRequest,
  ): Promise<IdentityCallbackResult> {
    await deps.identities.touch(identity, given)
    const result = await deps.signIn.afterFirstFactor(
      identity.userId,
      { amr: ['fed'] },
      {
        ip: request.ip,
        userAgent: request.userAgent,
        session: request.session,
        ...(request.signIn ?? {}),
        audit: { detail: { provider: identity.provider } },
      },
    )
    if (result.ok)
      return { ok: true, kind: 'signed_in', signedIn: result, identity, returnTo, clearCookie }
    if (result.code === 'second_factor_required') {
      // SECURITY: a provider's word is one factor; an account with a second factor still asks
      // for it (API.md), and no session exists until it is given.
      return {
        ok: false,
        code: 'second_factor_required',
        secondFactor: result,
        identity,
        returnTo,
        clearCookie,
      }
    }
    // The pipeline audited the refusal (inactive account, `require`).
    return {
      ok: false,
      code: 'refused',
      reason: 'account_refused',
      message: REFUSED_MESSAGES.account_refused,
      clearCookie,
    }
  }

  return {
    cookieName: policy.name,

    async begin(name, options = {}) {
      const provider = deps.providers.get(name)
      if (provider === undefined) throw new TesseraError('not_found', 'no such identity provider')
      if (!(await provider.ready())) {
        throw new TesseraError('unavailable', `the identity provider ${name} cannot be reached`, {
          retryAfter: 30,
        })
      }
      const checks = await provider.newChecks()
      const flow: FlowState = {
        p: name,
        s: checks.state,
        v: checks.codeVerifier,
        r: safeReturnTo(options.returnTo, deps.publicUrl, deps.trustedOrigins),
        ...(checks.nonce === undefined ? {} : { n: checks.nonce }),
        ...(options.linkUserId === undefined ? {} : { l: options.linkUserId }),
      }
      // SECURITY: state, nonce and the PKCE verifier never leave the server unsealed: the cookie
      // is AES-GCM sealed for this purpose, expires with the flow, is HttpOnly and SameSite=Lax
      // (sent on the provider's top-level redirect back, not on cross-site subrequests).
      const sealed = sealValue(deps.keyring, PURPOSE, JSON.stringify(flow), { ttl, now })
      const setCookie = serializeCookie(policy.name, sealed, { ...policy.attributes, maxAge: ttl })
      return { location: provider.authorizationUrl(checks).href, setCookie }
    },

    async callback(name, request) {
      const provider = deps.providers.get(name)
      if (provider === undefined) return refuse(name, 'unknown_provider', request)
      const flow = readFlow(request)
      // SECURITY: a callback without this browser's sealed state for this provider was not
      // started here (login CSRF, RFC 6749 10.12): refused before any request to the provider.
      if (flow === null) return refuse(name, 'state_missing', request)
      if (flow.p !== name) return refuse(name, 'state_mismatch', request)
      const admitted = await deps.limiter?.check(IDENTITY_CALLBACK_ACTION, { ip: request.ip })
      if (admitted !== undefined && !admitted.allowed) {
        return refuse(name, 'rate_limited', request, { retryAfterSeconds: admitted.retryAfter })
      }

      let given: ProviderIdentity
      try {
        given = await provider.finish(request.url, {
          state: flow.s,
          codeVerifier: flow.v,
          ...(flow.n === undefined ? {} : { nonce: flow.n }),
        })
      } catch (error) {
        if (error instanceof IdentityProviderError)
          return refuse(name, error.reason, request, { cause: error })
        throw error
      }
      const returnTo = safeReturnTo(flow.r, deps.publicUrl, deps.trustedOrigins)
      const existing = await deps.identities.find(given.provider, given.subject)

      if (flow.l !== undefined) {
        // SECURITY: a link is made only for the user who asked for it, still signed in in this
        // browser; never for whoever happens to be signed in when the callback arrives.
        if (request.session === undefined || request.session.userId !== flow.l) {
          return refuse(name, 'link_session_mismatch', request, { userId: flow.l })
        }
        const linked = await deps.identities.link(flow.l, given, request)
        if (!linked.ok) return refuse(name, 'identity_in_use', request, { userId: flow.l })
        return { ok: true, kind: 'linked', identity: linked.identity, returnTo, clearCookie }
      }

      if (existing !== null) return signInWith(existing, given, returnTo, request)

      if ((deps.signup ?? 'open') === 'closed') return refuse(name, 'signup_closed', request)
      const email = given.email === null ? null : parseEmail(given.email)
      if (email === null) return refuse(name, 'email_missing', request)
      // SECURITY: an identity is never attached to an existing account because the addresses
      // match, verified or not (pre-account takeover; the provider's e-mail claim is not proof
      // of owning this account). The owner signs in and links it.
      const owner = await deps.accounts.findUserByEmail(email)
      if (owner !== null) return refuse(name, 'email_in_use', request, { userId: owner.id })
      const created = await deps.identities.createAccount(email, given)
      if (!created.ok) {
        // A concurrent callback made the identity (sign in with it) or took the address.
        const raced = await deps.identities.find(given.provider, given.subject)
        if (raced !== null) return signInWith(raced, given, returnTo, request)
        return refuse(name, 'email_in_use', request)
      }
      await deps.audit.record({
        type: 'signup',
        outcome: 'success',
        userId: created.userId,
        ip: request.ip,
        userAgent: request.userAgent,
        detail: { method: 'fed', provider: name, emailVerified: given.emailVerified },
      })
      if (given.emailVerified) await deps.markEmailVerified?.(created.userId)
      return signInWith(created.identity, given, returnTo, request)
    },
  }
}
