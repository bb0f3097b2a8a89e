// The browser side of passkeys against the tessera server's routes (docs/passkeys.md), with
// @simplewebauthn/browser (its UMD bundle, loaded before this file, is the global
// SimpleWebAuthnBrowser). No inline script: the page's CSP allows only these files.
/* global SimpleWebAuthnBrowser, document, fetch, location, URLSearchParams */
'use strict'

const { startAuthentication, startRegistration, browserSupportsWebAuthnAutofill } =
  SimpleWebAuthnBrowser
const $ = (id) => document.getElementById(id)
let conditional = null
// `?autofill=off` keeps to the buttons (the tests drive each ceremony on its own).
const autofill = new URLSearchParams(location.search).get('autofill') !== 'off'

function say(text) {
  $('status').textContent = text
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const data = response.status === 204 ? {} : await response.json()
  if (!response.ok) throw new Error(`${response.status} ${data.error?.code ?? ''}`.trim())
  return data
}

async function show() {
  let current = null
  try {
    current = await call('GET', '/auth/session')
  } catch {
    current = null
  }
  $('signed-in').hidden = current === null
  $('signed-out').hidden = current !== null
  if (current === null) {
    startConditional()
    return null
  }
  const { session, user } = current
  $('who').textContent = `${user.email}: aal ${session.aal}, amr ${session.amr.join(' ')}`
  const { passkeys } = await call('GET', '/auth/passkeys')
  $('passkeys').replaceChildren(
    ...passkeys.map((passkey) => {
      const item = document.createElement('li')
      item.textContent = `${passkey.name} (added ${passkey.createdAt.slice(0, 10)})`
      item.dataset.id = passkey.id
      return item
    }),
  )
  return current
}

// Conditional UI: the passkeys the browser has for this site are offered in the e-mail field's
// autofill; the options are the same for everyone, so they are fetched before anyone types.
async function startConditional() {
  if (!autofill || conditional !== null || !(await browserSupportsWebAuthnAutofill())) return
  conditional = (async () => {
    try {
      const optionsJSON = await call('POST', '/auth/passkeys/login/options', {})
      const response = await startAuthentication({ optionsJSON, useBrowserAutofill: true })
      await call('POST', '/auth/passkeys/login', { response })
      say('Signed in with a passkey (autofill).')
      await show()
    } catch {
      // Cancelled (another sign-in started) or refused: the buttons still work.
    } finally {
      conditional = null
    }
  })()
}

async function passkeyLogin() {
  say('Waiting for the passkey…')
  try {
    const optionsJSON = await call('POST', '/auth/passkeys/login/options', {})
    const response = await startAuthentication({ optionsJSON })
    const result = await call('POST', '/auth/passkeys/login', { response })
    if (result.mfaRequired) return secondFactor(result.challenge)
    say(`Signed in with a passkey at aal ${result.session.aal}.`)
    await show()
  } catch (error) {
    say(`Passkey sign-in failed: ${error.message}`)
  }
}

async function register() {
  say('Creating a passkey…')
  try {
    const optionsJSON = await call('POST', '/auth/passkeys/register/options')
    const response = await startRegistration({ optionsJSON })
    const { passkey } = await call('POST', '/auth/passkeys/register', {
      response,
      name: $('passkey-name').value,
    })
    say(`Passkey "${passkey.name}" added.`)
    await show()
  } catch (error) {
    say(`Adding a passkey failed: ${error.message}`)
  }
}

async function passwordCall(path) {
  try {
    const result = await call('POST', path, {
      email: $('email').value,
      password: $('password').value,
    })
    if (result.mfaRequired) return secondFactor(result.challenge)
    say(path === '/auth/signup' ? 'Account created.' : 'Signed in with a password.')
    await show()
  } catch (error) {
    say(`Failed: ${error.message}`)
  }
}

// A password was right and the account has a second factor: answer it with a passkey.
function secondFactor(challenge) {
  $('second-factor').hidden = false
  say('A second factor is needed.')
  $('second-factor-passkey').onclick = async () => {
    try {
      const optionsJSON = await call('POST', '/auth/mfa/passkey-options', { challenge })
      const response = await startAuthentication({ optionsJSON })
      const result = await call('POST', '/auth/mfa/verify', {
        challenge,
        method: 'passkey',
        response,
      })
      $('second-factor').hidden = true
      say(`Signed in with a password and a passkey at aal ${result.session.aal}.`)
      await show()
    } catch (error) {
      say(`Second factor failed: ${error.message}`)
    }
  }
}

$('passkey-login').addEventListener('click', passkeyLogin)
$('register').addEventListener('click', register)
$('signup').addEventListener('click', () => passwordCall('/auth/signup'))
$('password-form').addEventListener('submit', (event) => {
  event.preventDefault()
  void passwordCall('/auth/login')
})
$('logout').addEventListener('click', async () => {
  await call('POST', '/auth/logout')
  say('Signed out.')
  await show()
})

show().then(
  () => say($('status').textContent === 'Loading…' ? 'Ready.' : $('status').textContent),
  (error) => say(`Error: ${error.message}`),
)
