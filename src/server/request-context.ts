import type { HttpBindings } from '@hono/node-server'
import type { Context } from 'hono'
import { clientIp, type TrustedProxies } from '../core/client-ip.js'
import type { AppEnv } from './app.js'

/** Who sent a request, for rate limits, audit records and the session list. */
export interface RequestInfo {
  /** Client address (behind trusted proxies, the one they report); undefined without a socket. */
  ip: string | undefined
  /** `User-Agent`, cut to 512 characters. */
  userAgent: string | undefined
}

const MAX_USER_AGENT = 512

/**
 * Reads the client address and user agent of a request. `X-Forwarded-For` is believed only
 * when the peer is one of the trusted proxies (`TESSERA_TRUSTED_PROXIES`).
 */
export function requestInfo(c: Context<AppEnv>, trustedProxies: TrustedProxies): RequestInfo {
  const bindings = c.env as Partial<HttpBindings> | undefined
  const socketAddress = bindings?.incoming?.socket.remoteAddress
  // SECURITY: the socket address is the only fact; forwarded headers count only from a trusted
  // proxy (OWASP: X-Forwarded-For spoofing defeats per-IP rate limits).
  const ip =
    socketAddress === undefined
      ? undefined
      : clientIp(socketAddress, c.req.header('x-forwarded-for'), trustedProxies)
  const agent = c.req.header('user-agent')
  return {
    ip,
    userAgent: agent === undefined ? undefined : agent.slice(0, MAX_USER_AGENT),
  }
}
