/**
 * Fastify base shared by the CSS and ESS APIs: Basic auth on every route but health, problem+json
 * errors carrying SYNC_ERR_* codes, streamed binary bodies, an OpenAPI document.
 */
import swagger from '@fastify/swagger'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { ERROR_TITLES, isSyncError, SyncError, SyncErrorCode } from '../common/errors.js'
import { createAjv, describeErrors, type ErrorObject } from '../common/validate.js'
import { documentResponses } from './openapi.js'
import { instrument } from './metrics-route.js'
import type { Registry } from '../common/metrics.js'
import { randomUUID } from 'node:crypto'
import type { Logger } from '../common/log.js'
import { cookieName, csrfMatches, readCookie, type Session, type UiSessions } from '../dashboard/sessions.js'
import {
  LoginGuard,
  parseBasicAuth,
  RateLimiter,
  type Authenticator,
  type Identity
} from '../security/index.js'

declare module 'fastify' {
  interface FastifyRequest {
    identity?: Identity
    /** Set when the request came with a dashboard session cookie (not Basic auth). */
    uiSession?: Session & { token: string }
  }
  interface FastifyInstance {
    /** Failed-login back-off shared by Basic auth and the dashboard's login form. */
    loginGuard: LoginGuard
  }
}

/** The one code -> HTTP status table. */
export const HTTP_STATUS: Readonly<Record<SyncErrorCode, number>> = {
  SYNC_ERR_CONFIG_INVALID: 500,
  SYNC_ERR_VALIDATION: 400,
  SYNC_ERR_BAD_JSON: 400,
  SYNC_ERR_BODY_TOO_LARGE: 413,
  SYNC_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  SYNC_ERR_NOT_FOUND: 404,
  SYNC_ERR_CONFLICT: 409,
  SYNC_ERR_PRECONDITION_FAILED: 412,
  SYNC_ERR_RANGE_NOT_SATISFIABLE: 416,
  SYNC_ERR_UNAUTHENTICATED: 401,
  SYNC_ERR_FORBIDDEN: 403,
  SYNC_ERR_RATE_LIMITED: 429,
  SYNC_ERR_PROTOCOL: 400,
  SYNC_ERR_STORAGE: 503,
  SYNC_ERR_DEVICE: 502,
  SYNC_ERR_TRANSPORT: 503,
  SYNC_ERR_UNAVAILABLE: 503,
  SYNC_ERR_INTERNAL: 500
}

// `/metrics` checks its own credential (see metrics-route.ts); the dashboard's page, assets and
// login form need none (the login checks the key and secret it is given).
const PUBLIC_PATHS = new Set([
  '/healthz', '/readyz', '/metrics', '/api/v1/openapi.json', '/api/v1/docs', '/ui', '/ui/', '/ui/login'
])
const isPublic = (path: string): boolean => PUBLIC_PATHS.has(path) || path.startsWith('/ui/assets/')
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** A client's `x-request-id` is kept if it is a plain token; otherwise the request gets a new one. */
function requestId (header: string | string[] | undefined): string {
  return typeof header === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(header) ? header : randomUUID()
}

export interface ApiServerOptions {
  log: Logger
  auth: Authenticator
  bodyLimit: number
  title: string
  /** Requests per second per app key (with a burst of twice that). */
  rateLimit: number
  /** Serve HTTPS with this certificate. */
  https?: { cert: string; key: string }
  /** Prometheus registry to serve at /metrics and to record requests in. */
  metrics?: { registry: Registry; key?: string }
  /** Dashboard sessions: a session cookie authenticates as Basic auth does (see dashboard/). */
  ui?: { sessions: UiSessions; kind: 'css' | 'ess' }
}

function sendProblem (
  reply: FastifyReply,
  code: SyncErrorCode,
  detail: string,
  extra: Record<string, unknown> = {}
): FastifyReply {
  const status = HTTP_STATUS[code]
  return reply
    .code(status)
    .type('application/problem+json')
    .send({
      type: 'about:blank',
      title: ERROR_TITLES[code],
      status,
      detail,
      code,
      requestId: reply.request.id,
      ...extra
    })
}

function mapFastifyError (err: {
  code?: string
  statusCode?: number
  validation?: unknown
}): SyncErrorCode | undefined {
  if (err.validation !== undefined) return SyncErrorCode.VALIDATION
  switch (err.code) {
    case 'FST_ERR_MAX_PARAM_LENGTH':
    case 'FST_ERR_BAD_URL':
      return SyncErrorCode.VALIDATION
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return SyncErrorCode.BODY_TOO_LARGE
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return SyncErrorCode.BAD_JSON
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return SyncErrorCode.UNSUPPORTED_MEDIA_TYPE
    default:
      break
  }
  if (err.statusCode === 400) return SyncErrorCode.VALIDATION
  return undefined
}

export async function createApiServer (opts: ApiServerOptions): Promise<FastifyInstance> {
  const base = {
    logger: false,
    bodyLimit: opts.bodyLimit,
    // Longer than any valid name: an overlong one is then a 400 naming the parameter, not a 414.
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
    forceCloseConnections: true,
    requestIdHeader: false as const,
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => requestId(req.headers['x-request-id'])
  }
  // The HTTPS instance differs only in its server type; routes and hooks are the same.
  const app =
    opts.https === undefined
      ? Fastify(base)
      : (Fastify({
          ...base,
          https: { cert: opts.https.cert, key: opts.https.key, minVersion: 'TLSv1.2' as const }
        }) as unknown as FastifyInstance)
  const log = opts.log
  // Parameters and query strings arrive as text and are coerced; bodies are JSON and are not:
  // `destinationType: ["edge"]` or `consumers: "3"` is a 400, never stored.
  const lenient = createAjv({ strict: false, coerceTypes: 'array', useDefaults: true, allErrors: false })
  const exact = createAjv({ strict: false, coerceTypes: false, useDefaults: true, allErrors: false })
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? exact : lenient).compile(schema))
  await app.register(swagger, {
    openapi: {
      info: { title: opts.title, version: '1' },
      components: { securitySchemes: { basic: { type: 'http', scheme: 'basic' } } },
      security: [{ basic: [] }]
    },
    transform: documentResponses
  })

  // Binary bodies stay streams: route handlers pipe them into the store, never buffer them.
  // Open Horizon's Go client sends JSON bodies with no Content-Type at all, and Open Horizon reads
  // them as JSON: so does a route that takes JSON here. With any content type, or on a binary
  // route (PUT .../data), the body stays a stream.
  app.addContentTypeParser(['application/octet-stream', '*'], (req, payload, done) => {
    if (req.headers['content-type'] !== undefined || req.routeOptions.schema?.body === undefined) {
      done(null, payload)
      return
    }
    readJson(payload, opts.bodyLimit).then(
      (v) => {
        done(null, v)
      },
      (err: Error) => {
        done(err)
      }
    )
  })

  // The request id goes back on every answer, and into every log line about the request.
  // Callback hooks, not async ones: no promise per request on the hot path.
  app.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id)
    done()
  })
  const record = opts.metrics === undefined ? undefined : instrument(app, opts.metrics.registry, opts.metrics.key)
  app.addHook('onResponse', (req, reply, done) => {
    record?.(req, reply)
    log.debug('Request', {
      requestId: req.id,
      method: req.method,
      route: req.routeOptions.url ?? 'unmatched',
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime)
    })
    done()
  })

  const limiter = new RateLimiter(opts.rateLimit)
  // Throttle the guessing address, not the key guessed at (see LoginGuard).
  const guard = new LoginGuard()
  app.decorate('loginGuard', guard)
  const tooMany = (reply: FastifyReply, seconds: number, detail: string): FastifyReply =>
    sendProblem(reply.header('retry-after', String(seconds)), SyncErrorCode.RATE_LIMITED, detail)
  const ui = opts.ui
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (isPublic(req.url.split('?')[0] ?? '')) return
    if (ui !== undefined && req.headers.authorization === undefined) {
      const token = readCookie(req.headers.cookie, cookieName(ui.kind, req.headers.host, opts.https !== undefined))
      if (token !== undefined) return await bySession(req, reply, token, ui.sessions)
    }
    const cred = parseBasicAuth(req.headers.authorization)
    const key = cred?.key ?? ''
    const wait = guard.blocked(req.ip, key)
    if (wait > 0) {
      return tooMany(reply, wait, 'Too many failed logins from this address; wait before trying again')
    }
    const who = cred === undefined ? undefined : await opts.auth.check(cred.key, cred.secret)
    if (who === undefined) {
      if (cred !== undefined) guard.failed(req.ip, key)
      // Not to the dashboard's own requests: the browser would put up its Basic-auth dialog
      // over the page's login form.
      if (req.headers['x-requested-with'] !== 'edgesync-ui') {
        void reply.header('www-authenticate', 'Basic realm="edgesync"')
      }
      return sendProblem(
        reply,
        SyncErrorCode.UNAUTHENTICATED,
        'Use Basic auth with a valid app key and secret'
      )
    }
    guard.succeeded(req.ip, key)
    const retry = limiter.take(who.appKey)
    if (retry > 0) {
      return tooMany(reply, retry, `More than ${opts.rateLimit} requests per second for ${who.appKey}`)
    }
    req.identity = who
    return undefined
  })

  /** A dashboard request: its session cookie, and for a change its CSRF token too. */
  const bySession = async (
    req: FastifyRequest,
    reply: FastifyReply,
    token: string,
    sessions: UiSessions
  ): Promise<FastifyReply | undefined> => {
    const session = await sessions.check(token)
    if (session === undefined) {
      return sendProblem(reply, SyncErrorCode.UNAUTHENTICATED, 'The session ended or expired: log in again')
    }
    if (!SAFE_METHODS.has(req.method) && !csrfMatches(req.headers['x-csrf-token'], session.csrf)) {
      return sendProblem(reply, SyncErrorCode.FORBIDDEN, 'A change from the dashboard needs its x-csrf-token header')
    }
    const retry = limiter.take(session.identity.appKey)
    if (retry > 0) {
      return tooMany(reply, retry, `More than ${opts.rateLimit} requests per second for ${session.identity.appKey}`)
    }
    req.identity = session.identity
    req.uiSession = { ...session, token }
    return undefined
  }

  app.setErrorHandler(
    (err: Error & { code?: string; statusCode?: number; validation?: unknown }, req, reply) => {
      if (isSyncError(err)) {
        if (HTTP_STATUS[err.code] >= 500) {
          log.error('Request failed', { err, requestId: req.id, method: req.method, url: req.url })
        }
        return sendProblem(
          reply,
          err.code,
          err.message,
          err.details === undefined ? {} : { errors: err.details }
        )
      }
      const code = mapFastifyError(err)
      if (code === SyncErrorCode.VALIDATION && Array.isArray(err.validation)) {
        const where = (err as { validationContext?: string }).validationContext ?? ''
        const errors = describeErrors(err.validation as ErrorObject[]).map((e) => `${where}${e}`)
        return sendProblem(reply, code, errors.join('; '), { errors })
      }
      if (code !== undefined) return sendProblem(reply, code, err.message)
      log.error('Unexpected error in a request', { err, requestId: req.id, method: req.method, url: req.url })
      return sendProblem(reply, SyncErrorCode.INTERNAL, 'Unexpected internal error')
    }
  )

  app.setNotFoundHandler((req, reply) =>
    sendProblem(reply, SyncErrorCode.NOT_FOUND, `No route ${req.method} ${req.url.split('?')[0] ?? ''}`)
  )

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  app.get('/api/v1/docs', { schema: { hide: true } }, async (_req, reply) => {
    const spec = app.swagger() as { paths?: Record<string, Record<string, { summary?: string }>> }
    const rows = Object.entries(spec.paths ?? {}).flatMap(([p, ops]) =>
      Object.entries(ops).map(
        ([m, op]) =>
          `<tr><td>${m.toUpperCase()}</td><td><code>${p}</code></td><td>${op.summary ?? ''}</td></tr>`
      )
    )
    return await reply
      .type('text/html')
      .send(
        `<!doctype html><title>${opts.title}</title><h1>${opts.title}</h1><p>Machine-readable: <a href="/api/v1/openapi.json">openapi.json</a>. All routes use Basic auth.</p><table>${rows.join('')}</table>`
      )
  })
  return app
}

/** A whole body, refused past `limit` bytes. */
export async function readBody (stream: AsyncIterable<Uint8Array>, limit: number): Promise<Buffer> {
  const parts: Buffer[] = []
  let size = 0
  for await (const c of stream) {
    size += c.length
    if (size > limit) throw new SyncError(SyncErrorCode.BODY_TOO_LARGE, `Body is larger than ${limit} bytes`)
    parts.push(Buffer.from(c))
  }
  return Buffer.concat(parts)
}

/** A whole body as JSON, refused past `limit` bytes; an empty body is no body. */
async function readJson (stream: AsyncIterable<Uint8Array>, limit: number): Promise<unknown> {
  const body = await readBody(stream, limit)
  if (body.length === 0) return undefined
  try {
    return JSON.parse(body.toString('utf8')) as unknown
  } catch (err) {
    throw new SyncError(SyncErrorCode.BAD_JSON, 'Body is not valid JSON', { cause: err })
  }
}

export function forbidden (message: string): SyncError {
  return new SyncError(SyncErrorCode.FORBIDDEN, message)
}

/** Parses `Range: bytes=a-b` (single range; `a-` and `-n` forms). */
export function parseRange (
  header: string | undefined,
  size: number
): { start: number; end: number } | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null) {
    throw new SyncError(SyncErrorCode.RANGE_NOT_SATISFIABLE, `Unsupported Range header ${header}`)
  }
  const [, a = '', b = ''] = m
  if (a === '' && b === '') throw new SyncError(SyncErrorCode.RANGE_NOT_SATISFIABLE, 'Empty range')
  if (a === '') return { start: Math.max(size - Number(b), 0), end: size - 1 }
  return { start: Number(a), end: b === '' ? size - 1 : Math.min(Number(b), size - 1) }
}

export const nameSchema = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,127}$' } as const
