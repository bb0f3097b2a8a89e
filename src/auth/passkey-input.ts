import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  RegistrationResponseJSON,
} from '@simplewebauthn/server'

/*
 * The browser's WebAuthn answers (`PublicKeyCredential.toJSON()`, or @simplewebauthn/browser's
 * `startRegistration` / `startAuthentication`) read from an untrusted body: only the fields the
 * ceremony needs, each checked for type and size, copied into a fresh object (nothing spread, so
 * `__proto__` or extra fields have no effect). Anything else is `null`: a 400, never a 500.
 */

const BASE64URL = /^[A-Za-z0-9_-]*$/
/** WebAuthn caps credential ids at 1023 bytes; 1400 base64url characters hold that. */
const MAX_ID = 1400
/** Attestation objects with certificate chains run to a few KiB; the body limit is 64 KiB. */
const MAX_BLOB = 48 * 1024
const TRANSPORTS: readonly string[] = [
  'ble',
  'cable',
  'hybrid',
  'internal',
  'nfc',
  'smart-card',
  'usb',
]

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function field(object: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(object, name) ? object[name] : undefined
}

function base64url(value: unknown, max: number, allowEmpty = false): value is string {
  return (
    typeof value === 'string' &&
    value.length <= max &&
    (allowEmpty || value.length > 0) &&
    BASE64URL.test(value)
  )
}

/** The common part: `{ id, rawId, type: 'public-key', response: {...} }`. */
function readEnvelope(
  raw: unknown,
): { id: string; inner: Record<string, unknown>; clientDataJSON: string } | null {
  if (!isObject(raw)) return null
  const id = field(raw, 'id')
  const rawId = field(raw, 'rawId')
  const inner = field(raw, 'response')
  if (!base64url(id, MAX_ID) || rawId !== id || field(raw, 'type') !== 'public-key') return null
  if (!isObject(inner)) return null
  const clientDataJSON = field(inner, 'clientDataJSON')
  if (!base64url(clientDataJSON, MAX_BLOB)) return null
  return { id, inner, clientDataJSON }
}

/** A registration answer, or `null` when it is not one. */
export function readRegistrationResponse(raw: unknown): RegistrationResponseJSON | null {
  const envelope = readEnvelope(raw)
  if (envelope === null) return null
  const attestationObject = field(envelope.inner, 'attestationObject')
  if (!base64url(attestationObject, MAX_BLOB)) return null
  const rawTransports = field(envelope.inner, 'transports')
  const transports = Array.isArray(rawTransports)
    ? rawTransports.filter(
        (t): t is AuthenticatorTransport => typeof t === 'string' && TRANSPORTS.includes(t),
      )
    : []
  return {
    id: envelope.id,
    rawId: envelope.id,
    type: 'public-key',
    clientExtensionResults: {},
    response: {
      clientDataJSON: envelope.clientDataJSON,
      attestationObject,
      transports: [...new Set(transports)],
    },
  }
}

/** An authentication answer (an assertion), or `null` when it is not one. */
export function readAuthenticationResponse(raw: unknown): AuthenticationResponseJSON | null {
  const envelope = readEnvelope(raw)
  if (envelope === null) return null
  const authenticatorData = field(envelope.inner, 'authenticatorData')
  const signature = field(envelope.inner, 'signature')
  const userHandle = field(envelope.inner, 'userHandle')
  if (!base64url(authenticatorData, MAX_BLOB) || !base64url(signature, MAX_BLOB)) return null
  if (userHandle !== undefined && userHandle !== null && !base64url(userHandle, 256, true)) {
    return null
  }
  return {
    id: envelope.id,
    rawId: envelope.id,
    type: 'public-key',
    clientExtensionResults: {},
    response: {
      clientDataJSON: envelope.clientDataJSON,
      authenticatorData,
      signature,
      ...(typeof userHandle === 'string' && userHandle !== '' ? { userHandle } : {}),
    },
  }
}
