'use server'
import { redirect } from 'next/navigation'
import { sessions } from '../lib/session'

export async function signIn(form: FormData): Promise<void> {
  const userId = await checkPassword(form) // your credential check
  await sessions.signIn(userId)
  redirect('/')
}

export async function signOut(): Promise<void> {
  await sessions.signOut()
  redirect('/')
}

function checkPassword(form: FormData): Promise<string> {
  const email = form.get('email')
  if (typeof email !== 'string') throw new Error('email is required')
  return Promise.resolve(email) // stands in for tessera-auth/auth's password check
}
