import { createHmac, sign, type KeyObject } from 'node:crypto'

export function b64(value: string | Buffer | object): string {
  if (Buffer.isBuffer(value)) return value.toString('base64url')
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return Buffer.from(text, 'utf8').toString('base64url')
}

/** Signs an arbitrary header and payload: lets tests forge every header trick by hand. */
export function signRaw(
  header: object,
  payload: object | string,
  alg: 'EdDSA' | 'ES256' | 'RS256' | 'HS256',
  key: KeyObject | Buffer,
): string {
  const input = `${b64(header)}.${b64(payload)}`
  let signature: Buffer
  if (alg === 'HS256') signature = createHmac('sha256', key).update(input).digest()
  else if (alg === 'EdDSA') signature = sign(null, Buffer.from(input), key)
  else if (alg === 'ES256') {
    signature = sign('sha256', Buffer.from(input), {
      key: key as KeyObject,
      dsaEncoding: 'ieee-p1363',
    })
  } else signature = sign('sha256', Buffer.from(input), key)
  return `${input}.${signature.toString('base64url')}`
}
