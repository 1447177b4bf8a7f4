/**
 * The dashboard's HTTP side, on the CSS and on the ESS: the page at /ui, its assets, and login,
 * session and logout. Every view then calls the same REST routes as any client, authenticated by
 * the session cookie (api/server.ts), so it can show and change exactly what the REST API allows.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { SyncError, SyncErrorCode } from '../common/errors.js'
import type { Authenticator } from '../security/index.js'
import { loadAssets } from './assets.js'
import { cookieName, type UiSessions } from './sessions.js'

export interface DashboardOptions {
  kind: 'css' | 'ess'
  title: string
  auth: Authenticator
  sessions: UiSessions
  https: boolean
  /** Shown on the login page (the ESS's node, the CSS's name). */
  subtitle?: string
}

/** Parts of a page's HTML; the import map is inline, so the CSP allows exactly its hash. */
function page (o: DashboardOptions): { html: string, csp: string } {
  const importMap = JSON.stringify({
    imports: {
      preact: '/ui/assets/vendor/preact.mjs',
      'preact/hooks': '/ui/assets/vendor/hooks.mjs',
      'preact/jsx-runtime': '/ui/assets/vendor/jsx-runtime.mjs'
    }
  })
  const hash = createHash('sha256').update(importMap).digest('base64')
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title}</title>
<link rel="stylesheet" href="/ui/assets/style.css">
<script type="importmap">${importMap}</script>
<script type="module" src="/ui/assets/${o.kind}-main.js"></script>
</head>
<body data-kind="${o.kind}"><div id="app"><p class="boot">Loading ${o.title}...</p></div>
<noscript>The dashboard needs JavaScript. Every view has a REST route: see /api/v1/docs.</noscript>
</body>
</html>
`
  const csp = [
    "default-src 'self'",
    `script-src 'self' 'sha256-${hash}'`,
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'"
  ].join('; ')
  return { html, csp }
}

export function registerDashboard (app: FastifyInstance, o: DashboardOptions): void {
  const assets = loadAssets()
  const { html, csp } = page(o)
  const secure = (reply: FastifyReply): FastifyReply =>
    reply
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('x-frame-options', 'DENY')
  const index = async (_req: unknown, reply: FastifyReply): Promise<FastifyReply> => {
    if (!assets.has(`${o.kind}-main.js`)) {
      throw new SyncError(SyncErrorCode.UNAVAILABLE, 'The dashboard is not built: run npm run build')
    }
    return await secure(reply).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html)
  }
  app.get('/ui', { schema: { hide: true } }, index)
  app.get('/ui/', { schema: { hide: true } }, index)
  app.get<{ Params: { '*': string } }>('/ui/assets/*', { schema: { hide: true } }, async (req, reply) => {
    const a = assets.get(req.params['*'])
    if (a === undefined) throw new SyncError(SyncErrorCode.NOT_FOUND, `No dashboard file ${req.params['*']}`)
    if (req.headers['if-none-match'] === a.etag) return await reply.code(304).send()
    return await secure(reply).header('etag', a.etag).header('cache-control', 'no-cache').type(a.type).send(a.body)
  })

  const name = (host: string | undefined): string => cookieName(o.kind, host, o.https)
  app.post<{ Body: { appKey: string, secret: string } }>(
    '/ui/login',
    {
      schema: {
        // The dashboard's own plumbing (docs/dashboard.md), not part of the REST API clients use.
        hide: true,
        summary: 'Dashboard login: an app key and secret open a session (HttpOnly, SameSite=Strict cookie)',
        body: {
          type: 'object',
          required: ['appKey', 'secret'],
          additionalProperties: false,
          properties: { appKey: { type: 'string', minLength: 1, maxLength: 256 }, secret: { type: 'string', minLength: 1, maxLength: 1024 } }
        }
      }
    },
    async (req, reply) => {
      const { appKey, secret } = req.body
      const wait = app.loginGuard.blocked(req.ip, appKey)
      if (wait > 0) {
        void reply.header('retry-after', String(wait))
        throw new SyncError(SyncErrorCode.RATE_LIMITED, 'Too many failed logins from this address; wait before trying again')
      }
      const who = await o.auth.check(appKey, secret)
      if (who === undefined) {
        app.loginGuard.failed(req.ip, appKey)
        throw new SyncError(SyncErrorCode.UNAUTHENTICATED, 'Wrong app key or secret, or the key is disabled')
      }
      if (who.role === 'node') throw new SyncError(SyncErrorCode.FORBIDDEN, 'Edge node credentials cannot use the dashboard')
      app.loginGuard.succeeded(req.ip, appKey)
      const { token, session } = await o.sessions.open(who)
      const maxAge = Math.floor((session.expiresAt - Date.now()) / 1000)
      void reply.header(
        'set-cookie',
        `${name(req.headers.host)}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${o.https ? '; Secure' : ''}`
      )
      return { ...session.identity, csrf: session.csrf, expiresAt: new Date(session.expiresAt).toISOString() }
    }
  )
  app.get('/ui/session', { schema: { hide: true, summary: 'The dashboard session: who, its CSRF token, when it ends' } }, async (req) => {
    const s = req.uiSession
    if (s === undefined) throw new SyncError(SyncErrorCode.UNAUTHENTICATED, 'No dashboard session (log in at /ui)')
    return { ...s.identity, csrf: s.csrf, expiresAt: new Date(s.expiresAt).toISOString() }
  })
  app.post('/ui/logout', { schema: { hide: true, summary: 'End the dashboard session' } }, async (req, reply) => {
    if (req.uiSession !== undefined) await o.sessions.close(req.uiSession.token)
    return await reply
      .header('set-cookie', `${name(req.headers.host)}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${o.https ? '; Secure' : ''}`)
      .code(204)
      .send()
  })
}
