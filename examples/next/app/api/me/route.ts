import { withSession } from 'tessera-auth/next'
import { sessions } from '../../../lib/session'

// 401 {"error":{"code":"unauthenticated"}} without a live session.
export const GET = withSession(sessions, (_request, { session }) =>
  Response.json({ userId: session.userId }),
)
