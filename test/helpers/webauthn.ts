import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import { isoCBOR } from '@simplewebauthn/server/helpers'

/*
 * A software authenticator for HTTP tests: it answers creation and request options as a
 * browser with a platform authenticator would (ES256 key, "none" attestation), and can be told
 * to misbehave (another origin, a counter, no user verification). The CBOR encoder is the one
 * @simplewebauthn/server ships; the browser tests use Chromium's virtual authenticator instead.
 */

const FLAG_UP = 0x01
const FLAG_UV = 0x04
const FLAG_BE = 0x08
const FLAG_BS = 0x10
const FLAG_AT = 0x40

/** A credential the software authenticator holds. */
export interface SoftCredential {
  id: string
  privateKey: KeyObject
  rpId: string
  /** The user handle (base64url) it was created for. */
  userHandle: string
  counter: number
}

export interface AnswerOptions {
  /** The origin written into client data. */
  origin: string
  /** The relying party id hashed into authenticator data. @default the options' */
  rpId?: string
  /** @default true */
  userVerified?: boolean
  /** The sign counter to report; for a credential, `counter + 1` unless given. */
  counter?: number
  /** A synced (backed-up) passkey. @default false */
  backedUp?: boolean
  /** Replace the challenge (a replay of another one). */
  challenge?: string
  /** The client data type. */
  type?: string
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

function authData(rpId: string, flags: number, counter: number, attested?: Uint8Array): Buffer {
  const head = Buffer.alloc(37)
  createHash('sha256').update(rpId).digest().copy(head, 0)
  head[32] = flags
  head.writeUInt32BE(counter >>> 0, 33)
  return attested === undefined ? head : Buffer.concat([head, attested])
}

function flagsOf(options: AnswerOptions): number {
  let flags = FLAG_UP
  if (options.userVerified !== false) flags |= FLAG_UV
  if (options.backedUp === true) flags |= FLAG_BE | FLAG_BS
  return flags
}

interface CreationOptions {
  challenge: string
  rp: { id?: string }
  user: { id: string }
}

interface RequestOptions {
  challenge: string
  rpId?: string
}

/** Answers creation options: a new credential and the registration response for it. */
export function createCredential(
  creation: CreationOptions,
  options: AnswerOptions,
): { credential: SoftCredential; response: Record<string, unknown> } {
  const rpId = options.rpId ?? creation.rp.id ?? 'localhost'
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' })
  const cose = isoCBOR.encode(
    new Map<number, number | Uint8Array>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url'))],
    ]),
  )
  const id = randomBytes(16)
  const idLength = Buffer.alloc(2)
  idLength.writeUInt16BE(id.length)
  const attested = Buffer.concat([Buffer.alloc(16), idLength, id, Buffer.from(cose)])
  const counter = options.counter ?? 0
  const data = authData(rpId, flagsOf(options) | FLAG_AT, counter, attested)
  const attestationObject = isoCBOR.encode(
    new Map<string, string | Uint8Array | Map<string, string>>([
      ['fmt', 'none'],
      ['attStmt', new Map<string, string>()],
      ['authData', new Uint8Array(data)],
    ]),
  )
  const clientData = JSON.stringify({
    type: options.type ?? 'webauthn.create',
    challenge: options.challenge ?? creation.challenge,
    origin: options.origin,
    crossOrigin: false,
  })
  const credential: SoftCredential = {
    id: b64(id),
    privateKey,
    rpId,
    userHandle: creation.user.id,
    counter,
  }
  return {
    credential,
    response: {
      id: credential.id,
      rawId: credential.id,
      type: 'public-key',
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
      response: {
        clientDataJSON: b64(Buffer.from(clientData)),
        attestationObject: b64(attestationObject),
        transports: ['internal'],
      },
    },
  }
}

/** Answers request options with `credential`: an assertion (the counter moves forward). */
export function getAssertion(
  request: RequestOptions,
  credential: SoftCredential,
  options: AnswerOptions & { userHandle?: string | null; id?: string },
): Record<string, unknown> {
  const rpId = options.rpId ?? request.rpId ?? credential.rpId
  const counter = options.counter ?? credential.counter + 1
  credential.counter = counter
  const data = authData(rpId, flagsOf(options), counter)
  const clientData = Buffer.from(
    JSON.stringify({
      type: options.type ?? 'webauthn.get',
      challenge: options.challenge ?? request.challenge,
      origin: options.origin,
      crossOrigin: false,
    }),
  )
  const signed = Buffer.concat([data, createHash('sha256').update(clientData).digest()])
  const signature = sign('sha256', signed, credential.privateKey)
  const userHandle = options.userHandle === undefined ? credential.userHandle : options.userHandle
  return {
    id: options.id ?? credential.id,
    rawId: options.id ?? credential.id,
    type: 'public-key',
    clientExtensionResults: {},
    authenticatorAttachment: 'platform',
    response: {
      clientDataJSON: b64(clientData),
      authenticatorData: b64(data),
      signature: b64(signature),
      ...(userHandle === null ? {} : { userHandle }),
    },
  }
}

/** Flips one bit of a base64url field's bytes (a tampered signature or client data). */
export function tamper(value: string, index = 8): string {
  const bytes = Buffer.from(value, 'base64url')
  bytes[index % bytes.length] = (bytes[index % bytes.length] ?? 0) ^ 0x01
  return bytes.toString('base64url')
}
