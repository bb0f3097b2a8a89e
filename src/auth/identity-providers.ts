import * as oidc from 'openid-client'
import { TesseraError } from '../core/errors.js'
import type { ProviderIdentity } from './identities.js'

/**
 * Identity providers: OpenID Connect through `openid-client` (discovery, the authorization code
 * flow with PKCE S256, `state`, `nonce`, ID token validation, the RFC 9207 `iss` parameter), and
 * OAuth-2-only presets (GitHub) through the same library's OAuth 2 half (`oauth4webapi`). No
 * token exchange or JWT check is written here: only which library call to make, and what its
 * answer means for a sign-in.
 */

/** What kind of provider: generic OpenID Connect, or the GitHub preset (OAuth 2 only). */
export type IdentityProviderKind = 'oidc' | 'github'

/** One provider, as configured (`TESSERA_OIDC_<NAME>_*`, or the library's arguments). */
export interface IdentityProviderSettings {
  /** The name in the routes (`/auth/oidc/<name>`): lowercase letters, digits, `_` and `-`. */
  name: string
  /** @default 'oidc' */
  kind?: IdentityProviderKind | undefined
  /** The issuer identifier (OpenID Connect): discovery reads `<issuer>/.well-known/openid-configuration`. */
  issuer?: string | undefined
  clientId: string
  /**
   * The client secret, sent in the token request's body (`client_secret_post`). Without one the
   * client is a public client: PKCE alone binds the code to this browser's flow.
   */
  clientSecret?: string | undefined
  /**
   * Scopes to ask for. @default ['openid', 'email', 'profile'] for OpenID Connect,
   * ['read:user', 'user:email'] for GitHub
   */
  scopes?: readonly string[] | undefined
  /**
   * GitHub preset only: the web and API base URLs, for GitHub Enterprise Server (or a loopback
   * stand-in in tests). @default 'https://github.com' and 'https://api.github.com'
   */
  github?: { webUrl?: string | undefined; apiUrl?: string | undefined } | undefined
}

/** Options of {@link createIdentityProviders}. */
export interface IdentityProvidersOptions {
  /**
   * The public URL of the application; each provider's redirect URI is
   * `<publicUrl>/auth/oidc/<name>/callback` (register that at the provider).
   */
  publicUrl: string
  /** Seconds each request to a provider may take. @default 10 */
  timeoutSeconds?: number | undefined
  /** Seconds between two discovery attempts of a provider that could not be reached. @default 30 */
  retryAfterSeconds?: number | undefined
  /** Clock in epoch milliseconds (ID token times are checked against it). @default Date.now */
  now?: (() => number) | undefined
  /** Receives a provider that cannot be reached. @default console.warn */
  onWarning?: ((message: string, error: unknown) => void) | undefined
}

/** What the authorization request is bound to: kept by the caller (sealed cookie) until the callback. */
export interface AuthorizationChecks {
  state: string
  /** Absent for an OAuth-2-only provider (no ID token to bind). */
  nonce?: string | undefined
  /** The PKCE code verifier (RFC 7636); its S256 challenge went to the provider. */
  codeVerifier: string
}

/** Why a callback was refused: the audit reason, and the code of the error page. */
export type CallbackRefusalReason =
  | 'state_missing'
  | 'state_mismatch'
  | 'provider_error'
  | 'issuer_mismatch'
  | 'nonce_mismatch'
  | 'id_token_invalid'
  | 'token_exchange_failed'
  | 'userinfo_failed'
  | 'provider_unavailable'

/** A refused callback: nobody is signed in. `message` is safe to show; `detail` goes to the log. */
export class IdentityProviderError extends Error {
  readonly reason: CallbackRefusalReason
  constructor(reason: CallbackRefusalReason, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'IdentityProviderError'
    this.reason = reason
  }
}

/** One configured provider. */
export interface IdentityProvider {
  readonly name: string
  readonly kind: IdentityProviderKind
  /** The redirect URI to register at the provider. */
  readonly redirectUri: string
  /**
   * True once the provider's metadata is known (OpenID discovery succeeded; a preset always).
   * An unreachable provider is tried again, at most once per `retryAfterSeconds`.
   */
  ready(): Promise<boolean>
  /** Fresh checks for one authorization request. */
  newChecks(): Promise<AuthorizationChecks & { codeChallenge: string }>
  /** The provider URL to send the browser to. @throws TesseraError `unavailable` before discovery */
  authorizationUrl(checks: AuthorizationChecks & { codeChallenge: string }): URL
  /**
   * Validates the callback (`state`, RFC 9207 `iss`, an `error` answer), exchanges the code
   * (with the PKCE verifier), validates the ID token (signature against the provider's JWKS,
   * `iss`, `aud`, `exp`, `nonce`), and returns who signed in.
   * @throws IdentityProviderError with the reason of the refusal
   */
  finish(callbackUrl: URL, checks: AuthorizationChecks): Promise<ProviderIdentity>
}

/** Every configured provider, by name. */
export interface IdentityProviders {
  get(name: string): IdentityProvider | undefined
  list(): readonly IdentityProvider[]
  /**
   * Discovers every provider once (at start). An unreachable one is reported to `onWarning`
   * and answered with `503` until it is reached: never a crash.
   */
  discoverAll(): Promise<void>
}

const NAME = /^[a-z][a-z0-9_-]{0,31}$/
const GITHUB_WEB = 'https://github.com'
const GITHUB_API = 'https://api.github.com'

function isLoopback(url: URL): boolean {
  return url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]'
}

function parseHttpURL(value: string, what: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch (cause) {
    throw new TesseraError('config_invalid', `${what} must be an absolute https URL`, { cause })
  }
  // SECURITY: tokens and client secrets travel only over TLS; plain http is accepted for a
  // provider on this machine (development, tests), never across a network.
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url))) {
    throw new TesseraError(
      'config_invalid',
      `${what} must be an https URL (http only for 127.0.0.1 or localhost)`,
    )
  }
  return url
}

/** Checks one provider's settings. @throws TesseraError `config_invalid` naming the setting */
export function checkIdentityProviderSettings(settings: IdentityProviderSettings): void {
  if (typeof settings.name !== 'string' || !NAME.test(settings.name)) {
    throw new TesseraError(
      'config_invalid',
      `identity provider name "${String(settings.name)}" must be 1 to 32 lowercase letters, digits, "_" or "-", starting with a letter`,
    )
  }
  const kind = settings.kind ?? 'oidc'
  if (kind !== 'oidc' && kind !== 'github') {
    throw new TesseraError(
      'config_invalid',
      `identity provider ${settings.name}: kind must be oidc or github`,
    )
  }
  if (typeof settings.clientId !== 'string' || settings.clientId === '') {
    throw new TesseraError(
      'config_invalid',
      `identity provider ${settings.name}: clientId is required`,
    )
  }
  if (kind === 'oidc') {
    if (settings.issuer === undefined || settings.issuer === '') {
      throw new TesseraError(
        'config_invalid',
        `identity provider ${settings.name}: issuer is required`,
      )
    }
    parseHttpURL(settings.issuer, `identity provider ${settings.name}: issuer`)
  } else {
    if (settings.clientSecret === undefined || settings.clientSecret === '') {
      throw new TesseraError(
        'config_invalid',
        `identity provider ${settings.name}: clientSecret is required for GitHub`,
      )
    }
    parseHttpURL(
      settings.github?.webUrl ?? GITHUB_WEB,
      `identity provider ${settings.name}: github.webUrl`,
    )
    parseHttpURL(
      settings.github?.apiUrl ?? GITHUB_API,
      `identity provider ${settings.name}: github.apiUrl`,
    )
  }
  if (
    settings.scopes !== undefined &&
    (!Array.isArray(settings.scopes) ||
      settings.scopes.some(
        (scope) => typeof scope !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope),
      ))
  ) {
    throw new TesseraError(
      'config_invalid',
      `identity provider ${settings.name}: scopes must be scope tokens`,
    )
  }
}

/** The openid-client error of the code exchange (and ID token checks), as a refusal reason. */
function tokenRefusal(error: unknown): IdentityProviderError {
  if (error instanceof IdentityProviderError) return error
  const exchange = (cause: unknown): IdentityProviderError =>
    new IdentityProviderError('token_exchange_failed', 'the provider refused the code exchange', {
      cause,
    })
  if (
    error instanceof oidc.ResponseBodyError ||
    error instanceof oidc.WWWAuthenticateChallengeError ||
    !(error instanceof oidc.ClientError)
  ) {
    return exchange(error)
  }
  // openid-client wraps oauth4webapi's error, whose `cause` holds what was compared.
  const inner = (error.cause as { cause?: unknown } | undefined)?.cause
  const detail =
    typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>) : {}
  if (detail.claim === 'nonce') {
    return new IdentityProviderError(
      'nonce_mismatch',
      'the ID token was not made for this sign-in',
      {
        cause: error,
      },
    )
  }
  if (
    error.code === 'OAUTH_JWT_TIMESTAMP_CHECK_FAILED' ||
    error.code === 'OAUTH_JWT_CLAIM_COMPARISON_FAILED' ||
    error.code === 'OAUTH_KEY_SELECTION_FAILED' ||
    'signature' in detail ||
    'claims' in detail
  ) {
    return new IdentityProviderError('id_token_invalid', 'the ID token is not valid', {
      cause: error,
    })
  }
  return exchange(error)
}

/**
 * Names what is wrong with an authorization response before the library refuses it (the
 * library's checks are the ones that count; this only picks the reason for the audit log).
 */
function callbackRefusal(
  params: URLSearchParams,
  checks: AuthorizationChecks,
  metadata: oidc.ServerMetadata,
): IdentityProviderError | null {
  const state = params.get('state')
  if (state === null || state !== checks.state) {
    return new IdentityProviderError('state_mismatch', 'the sign-in state does not match')
  }
  const iss = params.get('iss')
  // RFC 9207: the authorization server names itself; an answer naming another (or none, from
  // one that promises to) may come from a mix-up attack.
  if (
    (iss !== null && iss !== metadata.issuer) ||
    (iss === null && metadata.authorization_response_iss_parameter_supported === true)
  ) {
    return new IdentityProviderError('issuer_mismatch', 'the answer came from another issuer')
  }
  if (params.get('error') !== null) {
    return new IdentityProviderError('provider_error', 'the provider refused the sign-in')
  }
  return null
}

function stringClaim(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 && value.length <= 320 ? value : null
}

/**
 * Builds the configured providers. Nothing is fetched here: {@link IdentityProviders.discoverAll}
 * (at start) and each provider's `ready()` (per request) discover them.
 *
 * @throws TesseraError `config_invalid` for a bad setting or two providers with one name
 * @example
 * ```ts
 * const providers = createIdentityProviders(
 *   [{ name: 'google', issuer: 'https://accounts.google.com', clientId, clientSecret }],
 *   { publicUrl: 'https://auth.example.com' },
 * )
 * await providers.discoverAll()
 * ```
 */
export function createIdentityProviders(
  settings: readonly IdentityProviderSettings[],
  options: IdentityProvidersOptions,
): IdentityProviders {
  const publicUrl = options.publicUrl.replace(/\/+$/, '')
  const now = options.now ?? Date.now
  const timeout = options.timeoutSeconds ?? 10
  const retryAfter = options.retryAfterSeconds ?? 30
  const onWarning =
    options.onWarning ?? ((message: string): void => console.warn(`tessera: ${message}`))
  const byName = new Map<string, IdentityProvider>()
  for (const entry of settings) {
    checkIdentityProviderSettings(entry)
    if (byName.has(entry.name)) {
      throw new TesseraError(
        'config_invalid',
        `identity provider ${entry.name} is configured twice`,
      )
    }
    byName.set(entry.name, createProvider(entry))
  }

  /** The client metadata of a provider's configuration: its secret and redirect URI. */
  function clientMetadata(entry: IdentityProviderSettings): Partial<oidc.ClientMetadata> {
    return {
      ...(entry.clientSecret === undefined ? {} : { client_secret: entry.clientSecret }),
      redirect_uris: [redirectUriOf(entry)],
      response_types: ['code'],
    }
  }

  function redirectUriOf(entry: IdentityProviderSettings): string {
    return `${publicUrl}/auth/oidc/${entry.name}/callback`
  }

  /** Applies what every configuration shares: loopback http, the timeout, signature checks. */
  function prepare(config: oidc.Configuration, url: URL, kind: IdentityProviderKind): void {
    if (url.protocol === 'http:') oidc.allowInsecureRequests(config)
    config.timeout = timeout
    // SECURITY: the ID token's signature is verified against the keys the provider publishes
    // (its jwks_uri), not only trusted because it came over TLS from the token endpoint (OIDC
    // Core 3.1.3.7 allows that; a token signed with any other key is refused here).
    if (kind === 'oidc') oidc.enableNonRepudiationChecks(config)
  }

  function createProvider(entry: IdentityProviderSettings): IdentityProvider {
    const kind = entry.kind ?? 'oidc'
    const redirectUri = redirectUriOf(entry)
    const scopes =
      entry.scopes ??
      (kind === 'oidc' ? ['openid', 'email', 'profile'] : ['read:user', 'user:email'])
    let config: oidc.Configuration | null = null
    let lastAttempt = -Infinity
    let pending: Promise<boolean> | null = null

    // The clock of ID token checks follows `now` (tests move it; production passes Date.now).
    let skewed: { skew: number; config: oidc.Configuration } | null = null
    function withClock(): oidc.Configuration {
      if (config === null)
        throw new TesseraError('unavailable', `identity provider ${entry.name} is not reachable`)
      const skew = Math.round((now() - Date.now()) / 1000)
      if (skew === 0) return config
      // Kept while the offset stays the same, so the copy's key set cache is reused.
      if (skewed?.skew !== skew) {
        const copy = new oidc.Configuration(config.serverMetadata(), entry.clientId, {
          ...clientMetadata(entry),
          [oidc.clockSkew]: skew,
        })
        prepare(copy, new URL(config.serverMetadata().issuer), kind)
        skewed = { skew, config: copy }
      }
      return skewed.config
    }

    async function discover(): Promise<boolean> {
      if (kind === 'github') {
        const web = new URL(entry.github?.webUrl ?? GITHUB_WEB)
        const base = web.href.replace(/\/+$/, '')
        config = new oidc.Configuration(
          {
            issuer: base,
            authorization_endpoint: `${base}/login/oauth/authorize`,
            token_endpoint: `${base}/login/oauth/access_token`,
          },
          entry.clientId,
          clientMetadata(entry),
        )
        prepare(config, web, kind)
        return true
      }
      const issuer = new URL(entry.issuer ?? '')
      try {
        const found = await oidc.discovery(
          issuer,
          entry.clientId,
          clientMetadata(entry),
          undefined,
          {
            timeout,
            ...(issuer.protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : {}),
          },
        )
        prepare(found, issuer, kind)
        config = found
        return true
      } catch (error) {
        onWarning(
          `identity provider ${entry.name} (${issuer.href}) cannot be reached: its routes answer 503 until it can; retried at most every ${retryAfter} s`,
          error,
        )
        return false
      }
    }

    async function fetchGitHubIdentity(
      accessToken: string,
      configuration: oidc.Configuration,
    ): Promise<ProviderIdentity> {
      const api = (entry.github?.apiUrl ?? GITHUB_API).replace(/\/+$/, '')
      const get = async (path: string): Promise<unknown> => {
        const response = await oidc.fetchProtectedResource(
          configuration,
          accessToken,
          new URL(`${api}${path}`),
          'GET',
          null,
          new Headers({ accept: 'application/vnd.github+json' }),
        )
        if (!response.ok)
          throw new IdentityProviderError(
            'userinfo_failed',
            'the provider did not say who signed in',
          )
        return response.json()
      }
      const user = (await get('/user')) as { id?: unknown } | null
      const id = user?.id
      if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
        throw new IdentityProviderError('userinfo_failed', 'the provider did not say who signed in')
      }
      // GitHub's /user e-mail is whatever the person made public, unverified: the verified
      // primary address comes from /user/emails (the user:email scope).
      const emails = await get('/user/emails')
      let email: string | null = null
      let emailVerified = false
      if (Array.isArray(emails)) {
        const primary = emails.find(
          (item: unknown) =>
            typeof item === 'object' &&
            item !== null &&
            (item as { primary?: unknown }).primary === true,
        ) as { email?: unknown; verified?: unknown } | undefined
        email = stringClaim(primary?.email)
        emailVerified = email !== null && primary?.verified === true
      }
      return { provider: entry.name, subject: String(id), email, emailVerified }
    }

    return {
      name: entry.name,
      kind,
      redirectUri,

      ready(): Promise<boolean> {
        if (config !== null) return Promise.resolve(true)
        if (pending !== null) return pending
        if (now() - lastAttempt < retryAfter * 1000) return Promise.resolve(false)
        lastAttempt = now()
        pending = discover().finally(() => {
          pending = null
        })
        return pending
      },

      async newChecks() {
        const codeVerifier = oidc.randomPKCECodeVerifier()
        return {
          state: oidc.randomState(),
          ...(kind === 'oidc' ? { nonce: oidc.randomNonce() } : {}),
          codeVerifier,
          codeChallenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        }
      },

      authorizationUrl(checks) {
        if (config === null)
          throw new TesseraError('unavailable', `identity provider ${entry.name} is not reachable`)
        const parameters: Record<string, string> = {
          redirect_uri: redirectUri,
          scope: scopes.join(' '),
          // SECURITY: PKCE S256 on every request (RFC 9700 2.1.1), whether or not the provider
          // advertises it, plus state (CSRF) and, for OpenID Connect, nonce (ID token replay).
          code_challenge: checks.codeChallenge,
          code_challenge_method: 'S256',
          state: checks.state,
        }
        if (checks.nonce !== undefined) parameters.nonce = checks.nonce
        return oidc.buildAuthorizationUrl(config, parameters)
      },

      async finish(callbackUrl, checks) {
        if (!(await this.ready())) {
          throw new IdentityProviderError('provider_unavailable', 'the provider cannot be reached')
        }
        const configuration = withClock()
        // The token endpoint is told the registered redirect URI (openid-client takes it from
        // the URL without its query), never one built from the request's Host.
        const current = new URL(redirectUri)
        current.search = callbackUrl.search
        const named = callbackRefusal(
          callbackUrl.searchParams,
          checks,
          configuration.serverMetadata(),
        )
        if (named !== null) throw named
        let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>
        try {
          tokens = await oidc.authorizationCodeGrant(configuration, current, {
            pkceCodeVerifier: checks.codeVerifier,
            expectedState: checks.state,
            ...(kind === 'oidc'
              ? { expectedNonce: checks.nonce ?? '', idTokenExpected: true }
              : {}),
          })
        } catch (error) {
          throw tokenRefusal(error)
        }
        if (kind === 'github') {
          try {
            return await fetchGitHubIdentity(tokens.access_token, configuration)
          } catch (error) {
            throw userinfoRefusal(error)
          }
        }
        const claims = tokens.claims()
        if (claims === undefined)
          throw new IdentityProviderError('id_token_invalid', 'the provider sent no ID token')
        let email = stringClaim(claims.email)
        let emailVerified = email !== null && claims.email_verified === true
        if (email === null && configuration.serverMetadata().userinfo_endpoint !== undefined) {
          try {
            const info = await oidc.fetchUserInfo(configuration, tokens.access_token, claims.sub)
            email = stringClaim(info.email)
            emailVerified = email !== null && info.email_verified === true
          } catch (error) {
            throw userinfoRefusal(error)
          }
        }
        return { provider: entry.name, subject: claims.sub, email, emailVerified }
      },
    }
  }

  return {
    get: (name) => byName.get(name),
    list: () => [...byName.values()],
    async discoverAll(): Promise<void> {
      await Promise.all([...byName.values()].map((provider) => provider.ready()))
    },
  }
}

function userinfoRefusal(error: unknown): IdentityProviderError {
  if (error instanceof IdentityProviderError) return error
  return new IdentityProviderError('userinfo_failed', 'the provider did not say who signed in', {
    cause: error,
  })
}
