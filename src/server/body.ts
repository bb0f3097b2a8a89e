import { HTTPError } from './http-error.js'

/** The largest JSON body the API reads: 64 KiB (shared/API.md). */
export const MAX_BODY_BYTES = 64 * 1024

/**
 * True when a `Content-Type` header is `application/json`, whatever its case, whitespace or
 * parameters (`Application/JSON; charset=utf-8`).
 */
export function isJSONContentType(header: string | null | undefined): boolean {
  if (typeof header !== 'string') return false
  const semicolon = header.indexOf(';')
  const essence = (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase()
  return essence === 'application/json'
}

/** The answer to a body that did not arrive whole: the client's error, not the server's. */
function cutOff(cause: unknown): HTTPError {
  return new HTTPError(
    400,
    'invalid_request',
    'the request body was cut off or malformed (aborted upload or bad chunked encoding)',
    { cause },
  )
}

/**
 * Reads a request's bytes, refusing more than `limit` whether or not `Content-Length` is sent
 * (a chunked body is counted as it arrives and the read stops at the limit). The one body reader
 * of the server: the API's JSON routes, the admin panel's forms and the reset page all read
 * through it.
 *
 * @throws HTTPError 413 `payload_too_large`; 400 `invalid_request` when the body stream fails
 *   (the client aborted mid-body, or sent a malformed chunk), never anything that becomes a 500
 */
export async function readBodyBytes(request: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = (): HTTPError =>
    new HTTPError(413, 'payload_too_large', `the request body is larger than ${limit} bytes`)
  const declared = request.headers.get('content-length')
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > limit) {
    throw tooLarge()
  }
  if (request.body === null) return new Uint8Array(0)
  const reader = request.body.getReader() as ReadableStreamDefaultReader<Uint8Array>
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    let read: Awaited<ReturnType<typeof reader.read>>
    try {
      read = await reader.read()
    } catch (error) {
      // SECURITY: an aborted or malformed body is the client's doing: a 400, logged at info
      // level as a request, never an error-level stack any anonymous client could flood the
      // log with (issue 12).
      throw cutOff(error)
    }
    const { done, value } = read
    if (done) break
    size += value.byteLength
    // SECURITY: bound memory by bytes actually received, not by what the client declared.
    if (size > limit) {
      await reader.cancel().catch(() => {})
      throw tooLarge()
    }
    chunks.push(value)
  }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}

/**
 * Reads a JSON request body: `application/json` only (415 otherwise), at most
 * {@link MAX_BODY_BYTES} (413), valid UTF-8 JSON (400 `invalid_request`).
 *
 * @throws HTTPError 413, 415 or 400; never anything that becomes a 500
 */
export async function readJSONBody(request: Request): Promise<unknown> {
  // SECURITY: a cross-site HTML form can only send form-encoded or text/plain bodies, so
  // requiring application/json keeps those from reaching a handler (API.md, CSRF rules).
  if (!isJSONContentType(request.headers.get('content-type'))) {
    throw new HTTPError(415, 'unsupported_media_type', 'the request body must be application/json')
  }
  const bytes = await readBodyBytes(request, MAX_BODY_BYTES)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    throw new HTTPError(400, 'invalid_request', 'the request body is not valid UTF-8')
  }
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw new HTTPError(400, 'invalid_request', 'the request body is not valid JSON')
  }
}

const formCache = new WeakMap<Request, Promise<URLSearchParams>>()

/**
 * Reads an HTML form post: `application/x-www-form-urlencoded` only (415 otherwise), at most
 * {@link MAX_BODY_BYTES} (413), read through {@link readBodyBytes} (400 for a body cut off).
 * The body is read once per request; later calls get the same fields (the admin panel reads its
 * form's CSRF token before the route reads the rest).
 *
 * @throws HTTPError 415, 413 or 400; never anything that becomes a 500
 */
export function readFormBody(request: Request): Promise<URLSearchParams> {
  const cached = formCache.get(request)
  if (cached !== undefined) return cached
  const reading = (async (): Promise<URLSearchParams> => {
    const type = request.headers.get('content-type') ?? ''
    if (type.split(';')[0]?.trim().toLowerCase() !== 'application/x-www-form-urlencoded') {
      throw new HTTPError(
        415,
        'unsupported_media_type',
        'Forms must be sent as application/x-www-form-urlencoded.',
      )
    }
    const bytes = await readBodyBytes(request, MAX_BODY_BYTES)
    return new URLSearchParams(new TextDecoder().decode(bytes))
  })()
  formCache.set(request, reading)
  return reading
}

/** What a field of a JSON body must be. */
export type FieldType = 'string' | 'boolean' | 'number'

type FieldValue<T extends FieldType> = T extends 'string'
  ? string
  : T extends 'boolean'
    ? boolean
    : number

/**
 * Checks that `body` is a JSON object whose required fields have the given types, and returns
 * exactly those fields. Extra fields are ignored. Strings are limited to `maxLength` characters.
 *
 * @throws HTTPError 400 `invalid_request` naming the first wrong field
 */
export function expectFields<const S extends Record<string, FieldType>>(
  body: unknown,
  shape: S,
  options: { maxLength?: number } = {},
): { [K in keyof S]: FieldValue<S[K]> } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HTTPError(400, 'invalid_request', 'the request body must be a JSON object')
  }
  const maxLength = options.maxLength ?? 4096
  const record = body as Record<string, unknown>
  const result: Record<string, unknown> = {}
  for (const [name, type] of Object.entries(shape)) {
    const value = Object.hasOwn(record, name) ? record[name] : undefined
    if (typeof value !== type) {
      throw new HTTPError(400, 'invalid_request', `"${name}" must be a ${type}`)
    }
    if (typeof value === 'string' && value.length > maxLength) {
      throw new HTTPError(
        400,
        'invalid_request',
        `"${name}" is longer than ${maxLength} characters`,
      )
    }
    result[name] = value
  }
  return result as { [K in keyof S]: FieldValue<S[K]> }
}
