/** The few bits of HTTP the middleware needs: https detection, the path, Set-Cookie, on-headers. */
import type { ServerResponse } from 'node:http'
import type { SessionRequest } from './types.js'

export function isSecure(req: SessionRequest, trustProxy: boolean | undefined): boolean {
  const socket = req.socket as { encrypted?: boolean } | undefined
  if (socket?.encrypted === true) return true
  if (trustProxy === false) return false
  if (trustProxy !== true) return req.secure === true
  const header = req.headers['x-forwarded-proto']
  const value = (Array.isArray(header) ? header[0] : header) ?? ''
  const comma = value.indexOf(',')
  const proto = (comma === -1 ? value : value.slice(0, comma)).toLowerCase().trim()
  return proto === 'https'
}

export function pathnameOf(url: string): string {
  const end = url.search(/[?#]/)
  const path = end === -1 ? url : url.slice(0, end)
  if (path.startsWith('/')) return path
  try {
    return new URL(url).pathname
  } catch {
    return '/'
  }
}

export function appendSetCookie(res: ServerResponse, value: string): void {
  const previous = res.getHeader('Set-Cookie')
  const list = previous === undefined ? [] : Array.isArray(previous) ? previous : [String(previous)]
  res.setHeader('Set-Cookie', [...list, value])
}

/** Runs `listener` once, just before the response headers are written (like `on-headers`). */
export function onHeaders(res: ServerResponse, listener: () => void): void {
  const writeHead = res.writeHead.bind(res)
  let fired = false
  res.writeHead = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    if (!fired) {
      fired = true
      // Headers passed to writeHead itself are applied after ours, as Node would.
      if (typeof args[0] === 'number') this.statusCode = args[0]
      listener()
    }
    return (writeHead as (...a: unknown[]) => ServerResponse)(...args)
  }
}
