import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'

/** What the HTTP parser refused, as the client is told (the status Node itself would send). */
function answerOf(code: string | undefined): { status: number; message: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, message: 'the request headers are too large' }
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, message: 'the chunk extensions of the request body are too large' }
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, message: 'the request did not arrive in time' }
    default:
      return { status: 400, message: 'the request is not valid HTTP' }
  }
}

/**
 * The server's own answer to a request Node's HTTP parser refused before any route saw it (a
 * malformed request line, header or chunk, a header block over the limit, a request that took
 * too long): the status Node would send, with the security headers every response carries and
 * the API's error body, then the connection is closed. Nothing is written on a socket that
 * already carried bytes of a response (a response in progress cannot be replaced) or that is
 * gone. Install with `server.on('clientError', …)`.
 */
export function answerClientError(
  error: Error & { code?: string },
  socket: Duplex & { bytesWritten?: number },
  options: { headers: Readonly<Record<string, string>>; logger: Logger },
): void {
  if (error.code === 'ECONNRESET' || !socket.writable || (socket.bytesWritten ?? 0) > 0) {
    socket.destroy()
    return
  }
  const { status, message } = answerOf(error.code)
  // The client's mistake, logged as such (info, no stack): a stream of malformed requests must
  // not fill the error log.
  options.logger.info({ status, parserCode: error.code ?? null }, 'request refused by the parser')
  const body = JSON.stringify({ error: { code: 'invalid_request', message } })
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}`]
  // SECURITY: the parser's own answers carry the same security headers as every other response
  // (API.md "Conventions"; issue 12): CSP, nosniff, framing, Cache-Control: no-store, HSTS.
  for (const [name, value] of Object.entries(options.headers)) lines.push(`${name}: ${value}`)
  lines.push(
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  )
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`)
  // The parser may be in any state: do not wait for the client to read the answer forever.
  socket.once('finish', () => socket.destroy())
}
