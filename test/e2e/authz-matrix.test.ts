/**
 * Authorization matrix: every role against every CSS route. The route list comes from the served
 * OpenAPI document, so a route added without a rule here fails this test.
 */
import t from 'tap'
import { ADMIN, basic, enroll, startCss } from '../helpers/cluster.js'

type Rule = 'any' | 'read' | 'write' | 'org' | 'admin' | 'admins' | 'sync' | 'link' | 'self'
/**
 * What each route needs, and a body (and query) valid enough to reach the authorization check;
 * `params` replaces path parameters for this route only.
 */
const RULES: Record<string, { rule: Rule, body?: unknown, query?: string, params?: Record<string, string> }> = {
  'GET /api/v1/health': { rule: 'any' },
  'POST /api/v1/resend': { rule: 'any' },
  'PUT /api/v1/resend': { rule: 'any' },
  'GET /api/v1/security/{type}/{orgID}/{key}': { rule: 'admin' },
  // The HTTP link: enrolled nodes only, each as itself.
  'GET /api/v1/link/down': { rule: 'link', query: '?session=authz-matrix-1&wait=0' },
  'DELETE /api/v1/link/down': { rule: 'link', query: '?session=authz-matrix-1' },
  'POST /api/v1/link/up': { rule: 'link', query: '?session=authz-matrix-1', body: Buffer.from('{}') },
  'GET /api/v1/objects': { rule: 'sync', query: '?destination_policy=true' },
  'PUT /api/v1/objects/{orgID}/{objectType}/{objectID}/policyreceived': { rule: 'write' },
  'GET /api/v1/organizations': { rule: 'admins' },
  'GET /api/v1/cluster': { rule: 'sync' },
  'GET /api/v1/alerts/{orgID}': { rule: 'admin' },
  'POST /api/v1/alerts/{orgID}/test': { rule: 'admin' },
  'PUT /api/v1/organizations/{orgID}': { rule: 'admin', body: { orgID: 'org1' } },
  // An org of nobody's here: deleting it takes no role's keys away.
  'DELETE /api/v1/organizations/{orgID}': { rule: 'sync', params: { orgID: 'org3' } },
  'PUT /api/v1/objects/{orgID}/{objectType}/{objectID}': { rule: 'write', body: { meta: { destinationType: 'edge' } } },
  'GET /api/v1/objects/{orgID}/{objectType}/{objectID}': { rule: 'read' },
  'DELETE /api/v1/objects/{orgID}/{objectType}/{objectID}': { rule: 'write' },
  'PUT /api/v1/objects/{orgID}/{objectType}/{objectID}/data': { rule: 'write', body: Buffer.from('x') },
  'GET /api/v1/objects/{orgID}/{objectType}/{objectID}/data': { rule: 'read' },
  'GET /api/v1/objects/{orgID}/{objectType}/{objectID}/upload': { rule: 'write' },
  'PUT /api/v1/objects/{orgID}/{objectType}/{objectID}/consumed': { rule: 'read' },
  'PUT /api/v1/objects/{orgID}/{objectType}/{objectID}/received': { rule: 'read' },
  'GET /api/v1/objects/{orgID}/{objectType}/{objectID}/status': { rule: 'read' },
  'PUT /api/v1/objects/{orgID}/{objectType}/{objectID}/activate': { rule: 'write' },
  'GET /api/v1/objects/{orgID}/{objectType}/{objectID}/destinations': { rule: 'read' },
  'PUT /api/v1/objects/{orgID}/{objectType}/{objectID}/destinations': { rule: 'write', body: ['edge:n1'] },
  'POST /api/v1/objects/{orgID}/{objectType}/{objectID}/destinations': { rule: 'write', body: { action: 'add', destinations: ['edge:n1'] } },
  'GET /api/v1/objects/{orgID}/{objectType}/{objectID}/history': { rule: 'read' },
  'GET /api/v1/objects/{orgID}/{objectType}/{objectID}/instances/{instanceID}': { rule: 'read' },
  'POST /api/v1/objects/{orgID}/{objectType}/{objectID}/instances/{instanceID}/restore': { rule: 'write' },
  'GET /api/v1/objects/{orgID}/{objectType}': { rule: 'read' },
  'PUT /api/v1/objects/{orgID}/{objectType}': { rule: 'write', body: { action: 'register', url: 'http://127.0.0.1:9/hook' } },
  'GET /api/v1/destinations/{orgID}': { rule: 'org' },
  'GET /api/v1/destinations/{orgID}/{destType}/{destID}/objects': { rule: 'org' },
  'GET /api/v1/objects/{orgID}': { rule: 'org' },
  'POST /api/v1/nodes/{orgID}/{destType}/{destID}/enroll': { rule: 'admin' },
  'GET /api/v1/security/{type}/{orgID}': { rule: 'admin' },
  'PUT /api/v1/security/{type}/{orgID}': { rule: 'admin', body: { action: 'add', users: [{ ACLUserType: 'user', Username: 'zed', ACLRole: 'aclReader' }] } },
  'PUT /api/v1/security/{type}/{orgID}/{key}': { rule: 'admin', body: { action: 'add', users: [{ ACLUserType: 'user', Username: 'zed', ACLRole: 'aclReader' }] } },
  'DELETE /api/v1/security/{type}/{orgID}/{key}/{aclUserType}/{username}': { rule: 'admin' },
  'POST /api/v1/users/{orgID}': { rule: 'admin', body: { appKey: 'newkey' } },
  'GET /api/v1/users/{orgID}': { rule: 'admin' },
  'PUT /api/v1/users/{orgID}/{appKey}': { rule: 'admin', body: { disabled: false } },
  'DELETE /api/v1/users/{orgID}/{appKey}': { rule: 'admin' },
  'POST /api/v1/users/{orgID}/{appKey}/rotate': { rule: 'admin' },
  'DELETE /api/v1/nodes/{orgID}/{destType}/{destID}': { rule: 'admin' },
  'GET /api/v1/keys/{orgID}': { rule: 'admin' },
  'POST /api/v1/keys/{orgID}/rotate': { rule: 'admin' },
  'GET /api/v1/audit/{orgID}': { rule: 'admin' },
  'GET /api/v1/ems/{orgID}/layers/{layer}': { rule: 'org' },
  'PUT /api/v1/ems/{orgID}/layers/{layer}': { rule: 'admin', body: {} },
  'PATCH /api/v1/ems/{orgID}/layers/{layer}': { rule: 'admin', body: {} },
  'GET /api/v1/ems/{orgID}/layers/{layer}/history': { rule: 'org' },
  'GET /api/v1/ems/{orgID}/edges/{edgeID}/effective': { rule: 'org' },
  'GET /api/v1/ems/{orgID}/edges/{edgeID}/history': { rule: 'org' },
  'POST /api/v1/ems/{orgID}/edges/{edgeID}/rollback': { rule: 'admin', body: { version: 1 } },
  'POST /api/v1/ems/{orgID}/edges/{edgeID}/release': { rule: 'admin' },
  'POST /api/v1/ems/{orgID}/bulk': { rule: 'admin', body: { path: '/core_cycle/period_ms', value: 1000, site: 'A' } },
  'GET /api/v1/ems/{orgID}/status': { rule: 'org' },
  'GET /api/v1/ems/{orgID}/edges/{edgeID}/versions/{version}': { rule: 'org', params: { version: '1' } },
  'GET /api/v1/ems/{orgID}/edges/{edgeID}/versions/{version}/diff': { rule: 'org', params: { version: '1' }, query: '?from=0' },
  'GET /api/v1/ems/{orgID}/drift': { rule: 'org' },
  'POST /api/v1/ems/{orgID}/edges/{edgeID}/drift/correct': { rule: 'admin' },
  // Rollouts and maintenance windows: org admins change them, the org reads them.
  'POST /api/v1/rollouts/{orgID}': { rule: 'admin', body: { kind: 'ems', change: { layer: 'site:A', doc: {} } } },
  'GET /api/v1/rollouts/{orgID}': { rule: 'org' },
  'GET /api/v1/rollouts/{orgID}/{id}': { rule: 'org', params: { id: 'r1' } },
  'POST /api/v1/rollouts/{orgID}/{id}/{action}': { rule: 'admin', params: { id: 'r1', action: 'pause' } },
  'PUT /api/v1/windows/{orgID}/{name}': { rule: 'admin', params: { name: 'w1' }, body: { cron: '0 2 * * *', durationSeconds: 3600 } },
  'GET /api/v1/windows/{orgID}': { rule: 'org' },
  'DELETE /api/v1/windows/{orgID}/{name}': { rule: 'admin', params: { name: 'w1' } },
  // The dashboard's fleet view and its live stream; commands to one edge's plugins.
  'GET /api/v1/fleet/{orgID}': { rule: 'org' },
  'GET /api/v1/fleet/{orgID}/events': { rule: 'org' },
  'GET /api/v1/fleet/{orgID}/{destType}/{destID}': { rule: 'org' },
  'POST /api/v1/nodes/{orgID}/{destType}/{destID}/plugins/{name}/{action}': { rule: 'admin', params: { name: 'ems', action: 'pause' } },
  'GET /api/v1/ems/{orgID}/changes': { rule: 'org' },
  // The seed API: only the edge itself (node n9 here, which no role in this matrix is).
  'GET /api/v1/edges/{edgeID}/config': { rule: 'self' },
  'GET /api/v1/edges/{edgeID}/config/delta': { rule: 'self', query: '?since=1' },
  'POST /api/v1/edges/{edgeID}/heartbeat': { rule: 'self', body: { version: 1 } }
}

const PARAMS: Record<string, string> = { orgID: 'org1', objectType: 'conf', objectID: 'm1', instanceID: '1', destType: 'edge', destID: 'n9', type: 'objects', key: 'conf', aclUserType: 'user', username: 'zed', appKey: 'target', layer: 'site:A', edgeID: 'n9' }

const root = t.testdir()
const css = await startCss(t, root)
const admin = { authorization: basic(ADMIN) }
async function newKey (org: string, appKey: string, role: 'orgAdmin' | 'user'): Promise<{ key: string, secret: string }> {
  const r = await fetch(`${css.restUrl}/api/v1/users/${org}`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ appKey, role }) })
  return { key: appKey, secret: ((await r.json()) as { secret: string }).secret }
}
const roles = {
  syncAdmin: ADMIN,
  orgAdmin: await newKey('org1', 'admin1', 'orgAdmin'),
  otherOrgAdmin: await newKey('org2', 'admin2', 'orgAdmin'),
  reader: await newKey('org1', 'reader1', 'user'),
  noAcl: await newKey('org1', 'plain1', 'user'),
  node: { key: 'org1/edge/n1', secret: await enroll(css, 'org1', 'edge', 'n1') }
}
await newKey('org1', 'target', 'user')
await fetch(`${css.restUrl}/api/v1/security/objects/org1/conf`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ action: 'add', users: [{ ACLUserType: 'user', Username: 'reader1', ACLRole: 'aclReader' }] }) })
await fetch(`${css.restUrl}/api/v1/objects/org1/conf/m1`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: 'eA==' }) })

function allowed (role: keyof typeof roles, rule: Rule): boolean {
  switch (rule) {
    case 'any': return true
    case 'org': return role !== 'otherOrgAdmin' && role !== 'node'
    case 'read': return ['syncAdmin', 'orgAdmin', 'reader'].includes(role)
    case 'write': return ['syncAdmin', 'orgAdmin'].includes(role)
    case 'admin': return ['syncAdmin', 'orgAdmin'].includes(role)
    case 'admins': return ['syncAdmin', 'orgAdmin', 'otherOrgAdmin'].includes(role)
    case 'sync': return role === 'syncAdmin'
    case 'link': return role === 'node'
    case 'self': return false
  }
}

const spec = await (await fetch(`${css.restUrl}/api/v1/openapi.json`)).json() as { paths: Record<string, Record<string, unknown>> }
const routes = Object.entries(spec.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))

t.test('security - every route has an authorization rule', async (t) => {
  t.same(routes.filter((r) => RULES[r] === undefined), [], 'routes without a rule in this matrix')
  t.ok(routes.length >= 35, `${routes.length} routes`)
})

// Destructive routes last, so the earlier checks still find what they name.
const ordered = [...routes].sort((a, b) => Number(a.startsWith('DELETE') || a.includes('rotate')) - Number(b.startsWith('DELETE') || b.includes('rotate')))
t.test('security - authorization matrix: each role x each route', async (t) => {
  for (const route of ordered) {
    const rule = RULES[route]
    if (rule === undefined) continue
    const [method = 'GET', pattern = ''] = route.split(' ')
    const params = { ...PARAMS, ...rule.params }
    const url = css.restUrl + pattern.replace(/\{(\w+)\}/g, (_m, k: string) => params[k] ?? k) + (rule.query ?? '')
    const bodyInit = rule.body === undefined ? {} : Buffer.isBuffer(rule.body) ? { body: rule.body, headers: { 'content-type': 'application/octet-stream' } } : { body: JSON.stringify(rule.body), headers: { 'content-type': 'application/json' } }
    const anon = await fetch(url, { method, ...bodyInit })
    t.equal(anon.status, 401, `anonymous ${route}`)
    for (const [role, cred] of Object.entries(roles) as Array<[keyof typeof roles, { key: string, secret: string }]>) {
      const r = await fetch(url, { method, ...bodyInit, headers: { ...(bodyInit.headers ?? {}), authorization: basic(cred) } })
      await r.body?.cancel() // the event stream never ends by itself
      if (allowed(role, rule.rule)) t.ok(r.status !== 401 && r.status !== 403, `${role} may ${route} (got ${r.status})`)
      else t.equal(r.status, 403, `${role} may not ${route}`)
    }
  }
})

t.test('security - a public object is readable by apps of other orgs; others stay 403', async (t) => {
  await fetch(`${css.restUrl}/api/v1/objects/org1/conf/shared`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge', public: true }, data: Buffer.from('for all').toString('base64') }) })
  const other = { authorization: basic(roles.otherOrgAdmin) }
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/shared`, { headers: other })).status, 200)
  t.equal(await (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/shared/data`, { headers: other })).text(), 'for all')
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/shared`, { method: 'DELETE', headers: other })).status, 403, 'public means readable, not writable')
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/nothere`, { headers: other })).status, 403, 'a missing object is not revealed')
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/shared`, { headers: { authorization: basic(roles.node) } })).status, 403, 'never to node credentials')
})
