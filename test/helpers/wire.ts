/**
 * Requests written byte for byte as a foreign HTTP client writes them, over a raw TCP socket: no
 * library adds, reorders or drops a header. Go's net/http and Python 2's httplib (under urllib3,
 * as Open Horizon's Python client uses it) are described here from their sources.
 */
import net from 'node:net'

export interface WireAnswer {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export type Body = { json: unknown } | { bytes: Buffer } | { stream: Buffer } | undefined

export interface Wire {
  /** Which client this is, for test names. */
  name: string
  request: (base: string, method: string, path: string, auth: string, body?: Body) => Promise<WireAnswer>
}

/**
 * Go's net/http: Host, User-Agent, then Content-Length (or chunked for a body of unknown length,
 * an os.File), then the caller's headers (Authorization), then Accept-Encoding: gzip. A PUT or
 * POST with no body says Content-Length: 0. encoding/json writes compact JSON; the client never
 * sets a Content-Type.
 */
export const goClient: Wire = {
  name: 'Go client',
  request: async (base, method, path, auth, body) => {
    const url = new URL(base)
    const head = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'User-Agent: Go-http-client/1.1']
    let payload: Buffer = Buffer.alloc(0)
    if (body === undefined) {
      if (method === 'PUT' || method === 'POST') head.push('Content-Length: 0')
    } else if ('stream' in body) {
      head.push('Transfer-Encoding: chunked')
      payload = chunked(body.stream, 32 * 1024)
    } else {
      payload = 'json' in body ? Buffer.from(JSON.stringify(body.json)) : body.bytes
      head.push(`Content-Length: ${payload.length}`)
    }
    head.push(`Authorization: ${auth}`, 'Accept-Encoding: gzip')
    return await exchange(url, Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n'), payload]))
  }
}

/**
 * Python 2's httplib under urllib3 1.26: Host, Accept-Encoding: identity, Content-Length (0 for a
 * PUT or POST with no body, a file's size from fstat), then the caller's headers as urllib3 hands
 * them over (`authorization` in lower case from make_headers, Content-Type: application/json on
 * JSON calls) and urllib3's User-Agent. json.dumps separates with ", " and ": " and escapes
 * non-ASCII.
 */
export const pythonClient: Wire = {
  name: 'Python client',
  request: async (base, method, path, auth, body) => {
    const url = new URL(base)
    const head = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, 'Accept-Encoding: identity']
    let payload: Buffer = Buffer.alloc(0)
    const extra: string[] = []
    if (body === undefined) {
      if (method === 'PUT' || method === 'POST') head.push('Content-Length: 0')
    } else if ('json' in body) {
      payload = Buffer.from(pythonJson(body.json))
      head.push(`Content-Length: ${payload.length}`)
      extra.push('Content-Type: application/json')
    } else {
      payload = 'stream' in body ? body.stream : body.bytes
      head.push(`Content-Length: ${payload.length}`)
    }
    head.push(...extra, `authorization: ${auth}`, 'User-Agent: python-urllib3/1.26.20')
    return await exchange(url, Buffer.concat([Buffer.from(head.join('\r\n') + '\r\n\r\n'), payload]))
  }
}

/** json.dumps of Python 2 with its defaults. */
export function pythonJson (v: unknown): string {
  const ascii = (s: string): string =>
    JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (v === null || v === undefined) return 'null'
  if (typeof v === 'string') return ascii(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return `[${v.map(pythonJson).join(', ')}]`
  const entries = Object.entries(v as Record<string, unknown>)
  return `{${entries.map(([k, x]) => `${ascii(k)}: ${pythonJson(x)}`).join(', ')}}`
}

function chunked (data: Buffer, size: number): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < data.length; i += size) {
    const c = data.subarray(i, i + size)
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'))
  }
  parts.push(Buffer.from('0\r\n\r\n'))
  return Buffer.concat(parts)
}

/** Sends one request on a new connection and reads one response (Content-Length or chunked). */
async function exchange (url: URL, request: Buffer): Promise<WireAnswer> {
  return await new Promise<WireAnswer>((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname)
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => { socket.destroy(new Error('no complete answer within 15 s')) }, 15_000)
    socket.on('error', (err) => { clearTimeout(timer); reject(err) })
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      const answer = parse(buf)
      if (answer !== undefined) {
        clearTimeout(timer)
        socket.destroy()
        resolve(answer)
      }
    })
    socket.write(request)
  })
}

function parse (buf: Buffer): WireAnswer | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':')
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  const rest = buf.subarray(end + 4)
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = []
    let at = 0
    for (;;) {
      const nl = rest.indexOf('\r\n', at)
      if (nl < 0) return undefined
      const size = parseInt(rest.subarray(at, nl).toString(), 16)
      if (size === 0) return { status, headers, body: Buffer.concat(parts) }
      if (rest.length < nl + 2 + size + 2) return undefined
      parts.push(rest.subarray(nl + 2, nl + 2 + size))
      at = nl + 2 + size + 2
    }
  }
  const length = Number(headers['content-length'] ?? 0)
  if (rest.length < length) return undefined
  return { status, headers, body: rest.subarray(0, length) }
}
