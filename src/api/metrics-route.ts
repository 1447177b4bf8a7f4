/**
 * `/metrics` for Prometheus, and the REST metrics every request feeds. Open to loopback clients
 * only, unless a metrics key is set: then to whoever sends it as a bearer token, from anywhere.
 */
import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { counter, histogram, type Registry } from '../common/metrics.js'

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])
const REFUSED: Record<number, string> = { 401: 'unauthenticated', 403: 'forbidden', 429: 'rate_limited' }

function sameSecret (given: string, key: string): boolean {
  const a = Buffer.from(given)
  const b = Buffer.from(key)
  return a.length === b.length && timingSafeEqual(a, b)
}

async function problem (reply: FastifyReply, status: number, code: string, detail: string): Promise<FastifyReply> {
  return await reply.code(status).type('application/problem+json').send({ status, code, detail, requestId: reply.request.id })
}

/** Serves /metrics and returns what records each answered request (the server's onResponse calls it). */
export function instrument (
  app: FastifyInstance,
  registry: Registry,
  key: string | undefined
): (req: FastifyRequest, reply: FastifyReply) => void {
  const duration = histogram(
    registry,
    'edgesync_http_request_duration_seconds',
    'REST requests by route, method and status',
    ['route', 'method', 'status']
  )
  const refused = counter(registry, 'edgesync_http_refused_total', 'REST requests refused, by reason', ['reason'])
  // Labelled children cached per (route, method, status): no label hashing per request.
  const children = new Map<string, ReturnType<typeof duration.labels>>()
  const record = (req: FastifyRequest, reply: FastifyReply): void => {
    // The route pattern, never the URL: label values stay bounded.
    const route = req.routeOptions.url ?? 'unmatched'
    const k = `${route} ${req.method} ${reply.statusCode}`
    let child = children.get(k)
    if (child === undefined) {
      child = duration.labels({ route, method: req.method, status: String(reply.statusCode) })
      children.set(k, child)
    }
    child.observe(reply.elapsedTime / 1000)
    const reason = REFUSED[reply.statusCode]
    if (reason !== undefined) refused.inc({ reason })
  }
  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (key !== undefined) {
      const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')
      if (m?.[1] === undefined || !sameSecret(m[1], key)) {
        return await problem(reply.header('www-authenticate', 'Bearer'), 401, 'SYNC_ERR_UNAUTHENTICATED', 'Send the metrics key as a bearer token')
      }
    } else if (!LOOPBACK.has(req.ip)) {
      return await problem(reply, 403, 'SYNC_ERR_FORBIDDEN', 'Metrics are served to loopback clients only; set MetricsKey to serve them elsewhere')
    }
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
  return record
}
