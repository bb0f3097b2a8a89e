import { NextResponse, type NextRequest } from 'next/server'
import { sessions } from './lib/session'

// Next 16 runs proxy.ts on the Node.js runtime (tessera needs node:crypto). This is an
// optimistic check (signature only, no store read); pages and handlers check for real.
export function proxy(request: NextRequest) {
  if (!sessions.hasSignedCookie(request)) return NextResponse.redirect(new URL('/', request.url))
  return NextResponse.next()
}

export const config = { matcher: '/account/:path*' }
