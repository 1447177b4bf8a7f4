/**
 * The ESS end of the HTTP link: a long poll for the messages the CSS queued for this node, each
 * acknowledged by the next poll once handled (as a PUBACK would be), and one POST per message up,
 * answered once the CSS handled it. A new session (this process, or a CSS that lost it) starts
 * with a register, so the CSS resyncs the edge exactly as after an MQTT reconnect.
 */
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import { TransportError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { decodeFrames } from '../common/protocol/frames.js'
import type { EdgeLink, LinkHandlers } from './types.js'

export interface HttpLinkOptions {
  /** The CSS's REST API, http(s)://host:port. */
  url: string
  username: string
  password?: string
  /** For https: the CA to trust instead of the system's, and a client certificate. */
  tls?: { ca?: string; cert?: string; key?: string }
  /** How long the CSS holds a poll open when it has nothing to send. */
  waitSeconds: number
  /** As for the MQTT link: wait this long for the first answer, then go on polling in the background. */
  firstConnectWaitMs?: number
  log: Logger
}

interface Answer {
  status: number
  fresh: boolean
  body: Buffer
}

const RETRY_MIN_MS = 1000
const RETRY_MAX_MS = 15_000
/** A poll answer is at most 8 MiB of messages plus their framing. */
const MAX_ANSWER_BYTES = 9 * 1024 * 1024

export function httpLink (opts: HttpLinkOptions): EdgeLink {
  const base = new URL(opts.url)
  const secure = base.protocol === 'https:'
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 4, ...opts.tls })
    : new http.Agent({ keepAlive: true, maxSockets: 4 })
  const authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password ?? ''}`).toString('base64')}`
  const session = randomUUID()
  let connected = false
  let closed = false
  let loop: Promise<void> | undefined
  const stop = new AbortController()

  const request = async (
    method: string,
    path: string,
    body: Buffer | undefined,
    timeoutMs: number,
    signal = stop.signal
  ): Promise<Answer> => {
    const mod = secure ? https : http
    return await new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string> = { authorization }
      if (body !== undefined) headers['content-type'] = 'application/octet-stream'
      const req = mod.request(new URL(path, base), { method, agent, headers, signal }, (res) => {
        const parts: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > MAX_ANSWER_BYTES) req.destroy(new TransportError('The CSS answered more than a poll may carry'))
          else parts.push(c)
        })
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, fresh: res.headers['x-link-fresh'] === 'true', body: Buffer.concat(parts) })
        })
        res.on('error', reject)
      })
      req.setTimeout(timeoutMs, () => req.destroy(new TransportError(`No answer from ${base.origin} within ${timeoutMs} ms`)))
      req.on('error', (err) => {
        reject(err instanceof TransportError ? err : new TransportError(`${base.origin}: ${err.message}`, { cause: err }))
      })
      req.end(body)
    })
  }

  const run = async (handlers: LinkHandlers, reached: () => void): Promise<void> => {
    let ack = 0
    let delay = RETRY_MIN_MS
    let registered = false
    while (!stop.signal.aborted) {
      try {
        const q = `session=${session}&ack=${ack}&wait=${opts.waitSeconds}`
        const res = await request('GET', `/api/v1/link/down?${q}`, undefined, (opts.waitSeconds + 15) * 1000)
        if (res.status === 401 || res.status === 403) {
          throw new TransportError(`The CSS refused the credentials of ${opts.username} (HTTP ${res.status})`)
        }
        if (res.status !== 200) throw new TransportError(`The CSS answered a poll with HTTP ${res.status}`)
        const frames = decodeFrames(res.body)
        if (!connected) opts.log.info('Connected to the CSS over HTTP', { url: base.origin })
        connected = true
        delay = RETRY_MIN_MS
        if (res.fresh) ack = 0
        if (res.fresh || !registered) {
          registered = true
          await handlers.onConnect?.()
          reached()
        }
        for (const f of frames) {
          await handlers.onMessage(f.topic, f.payload).catch((err: unknown) => {
            opts.log.error('Message handler failed', { err, topic: f.topic })
          })
          ack = f.seq
        }
      } catch (err) {
        if (stop.signal.aborted) return
        if (connected) opts.log.warn('HTTP link to the CSS lost; retrying', { err, url: base.origin })
        else opts.log.debug('CSS not reachable over HTTP yet', { err, url: base.origin })
        connected = false
        handlers.onDown?.()
        const wait = delay * (0.75 + Math.random() * 0.5)
        delay = Math.min(delay * 2, RETRY_MAX_MS)
        await pause(wait, stop.signal)
      }
    }
  }

  return {
    channel: 'http',
    get connected () {
      return connected
    },
    open: async (handlers) => {
      if (loop !== undefined) throw new TransportError('This connection is open already')
      let reached: () => void = () => {}
      const first = new Promise<void>((resolve) => {
        reached = resolve
      })
      loop = run(handlers, reached)
      const waitMs = opts.firstConnectWaitMs ?? 15_000
      let timer: NodeJS.Timeout | undefined
      await Promise.race([first, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))])
      clearTimeout(timer)
      if (connected) return
      if (opts.firstConnectWaitMs === undefined) throw new TransportError(`Cannot reach ${base.origin} within 15 s`)
      opts.log.warn('CSS not reachable over HTTP yet; polling in the background', { url: base.origin })
    },
    publish: async (_topic, payload) => {
      if (!connected) throw new TransportError(`Not connected to ${base.origin}`)
      const res = await request('POST', `/api/v1/link/up?session=${session}`, payload, 30_000)
      if (res.status !== 204) {
        throw new TransportError(`The CSS refused a message with HTTP ${res.status}: ${res.body.toString().slice(0, 200)}`)
      }
    },
    close: async () => {
      if (closed) return
      closed = true
      const wasConnected = connected
      connected = false
      stop.abort()
      await loop
      if (wasConnected) {
        // Tells the CSS at once that this channel is gone (else it notices after its idle time).
        const bye = new AbortController().signal
        await request('DELETE', `/api/v1/link/down?session=${session}`, undefined, 2000, bye).catch(() => {})
      }
      agent.destroy()
    }
  }
}

/** Waits, or less if the link closes meanwhile (a close never waits out a backoff). */
async function pause (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}
