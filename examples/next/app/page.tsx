import { sessions } from '../lib/session'
import { signIn, signOut } from './actions'

export default async function Home() {
  const session = await sessions.get() // a server component reads, never writes, cookies
  if (session === null) {
    return (
      <form action={signIn}>
        <input name="email" type="email" />
        <button>Sign in</button>
      </form>
    )
  }
  return (
    <form action={signOut}>
      Signed in as {session.userId} <button>Sign out</button>
    </form>
  )
}
