/**
 * Compatibility with Open Horizon's sync-service REST API, written from its documented wire format
 * (paths, request shapes, response fields, status strings and codes) against real sync-css and
 * sync-ess processes. Only the setup (enrolling the node, creating a user) uses edgesync's own API.
 */
import http from 'node:http'
import t from 'tap'
import { edgeBarrier } from '../helpers/barrier.js'
import { startCssAndEss } from '../helpers/processes.js'

const root = t.testdir()
const admin = 'Basic ' + Buffer.from('ohadmin:ohsecret').toString('base64')
const app = 'Basic ' + Buffer.from('edgeapp:edgesecret').toString('base64')
const { CSS, ESS } = await startCssAndEss(t, root)

async function call (base: string, method: string, path: string, auth: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const init: RequestInit = { method, headers: { authorization: auth, ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' || Buffer.isBuffer(body) ? body as string : JSON.stringify(body)
    if (!('content-type' in headers)) (init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  return await fetch(`${base}${path}`, init)
}

async function until<T> (what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = await fn()
    if (v !== undefined) return v
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out: ${what}`)
}

t.test('open-horizon - publish with data, edge polls, reads, consumes; CSS sees consumed', async (t) => {
  const meta = { objectID: 'model1', objectType: 'model', destinationType: 'edge', version: '1.0.0', description: 'an ML model' }
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/model/model1', admin, { meta })).status, 204, 'metadata stored')
  t.equal(await (await call(CSS, 'GET', '/api/v1/objects/org1/model/model1/status', admin)).text(), 'notReady', 'waits for its data')
  const payload = Buffer.from('0123456789abcdef'.repeat(64))
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/model/model1/data', admin, payload, { 'content-type': 'application/octet-stream' })).status, 204, 'data uploaded')
  t.equal(await (await call(CSS, 'GET', '/api/v1/objects/org1/model/model1/status', admin)).text(), 'ready')
  const m = await (await call(CSS, 'GET', '/api/v1/objects/org1/model/model1', admin)).json() as Record<string, unknown>
  t.match(m, { objectID: 'model1', objectType: 'model', destinationType: 'edge', version: '1.0.0', description: 'an ML model', objectSize: payload.length })
  t.type(m.instanceID, 'number')
  t.type(m.dataID, 'number')

  const polled = await until('edge sees the object', async () => {
    const r = await call(ESS, 'GET', '/api/v1/objects/model', app)
    return r.status === 200 ? await r.json() as Array<Record<string, unknown>> : undefined
  })
  t.equal(polled.length, 1)
  t.match(polled[0], { objectID: 'model1', objectType: 'model', version: '1.0.0' })
  const emeta = await (await call(ESS, 'GET', '/api/v1/objects/model/model1', app)).json() as Record<string, unknown>
  t.equal(emeta.instanceID, m.instanceID, 'same instanceID on both sides')
  const data = Buffer.from(await (await call(ESS, 'GET', '/api/v1/objects/model/model1/data', app)).arrayBuffer())
  t.ok(data.equals(payload), 'data byte-exact on the edge')
  const part = await call(ESS, 'GET', '/api/v1/objects/model/model1/data', app, undefined, { range: 'bytes=16-31' })
  t.equal(part.status, 206)
  t.equal(part.headers.get('content-range'), `bytes 16-31/${payload.length}`)
  t.equal(await part.text(), '0123456789abcdef')
  t.equal((await call(ESS, 'PUT', '/api/v1/objects/model/model1/consumed', app)).status, 204)

  const dests = await until('CSS shows consumed', async () => {
    const d = await (await call(CSS, 'GET', '/api/v1/objects/org1/model/model1/destinations', admin)).json() as Array<Record<string, unknown>>
    return d[0]?.status === 'consumed' ? d : undefined
  })
  t.match(dests, [{ destinationType: 'edge', destinationID: 'n1', status: 'consumed', message: '' }])
  t.equal((await call(ESS, 'GET', '/api/v1/objects/model', app)).status, 404, 'consumed objects leave the poll list')
  const cssRange = await call(CSS, 'GET', '/api/v1/objects/org1/model/model1/data', admin, undefined, { range: 'bytes=0-9' })
  t.equal(cssRange.status, 206)
  t.equal(await cssRange.text(), '0123456789')
})

t.test('open-horizon - destinations and a node\'s objects', async (t) => {
  const nodes = await (await call(CSS, 'GET', '/api/v1/destinations/org1', admin)).json() as Array<Record<string, unknown>>
  t.match(nodes, [{ destinationOrgID: 'org1', destinationType: 'edge', destinationID: 'n1', communication: 'mqtt' }])
  t.type(nodes[0]?.codeVersion, 'string')
  t.type(nodes[0]?.lastPingTime, 'string')
  const objs = await (await call(CSS, 'GET', '/api/v1/destinations/org1/edge/n1/objects', admin)).json() as Array<Record<string, unknown>>
  t.match(objs, [{ objectID: 'model1', objectType: 'model', status: 'consumed' }])
})

t.test('open-horizon - destinations list put/post', async (t) => {
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/cfg/c1', admin, { meta: { objectID: 'c1', objectType: 'cfg', destinationsList: [], noData: true } })).status, 204)
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/cfg/c1/destinations', admin, ['edge:n1'])).status, 204)
  await until('c1 reaches n1 through its list', async () => (await call(ESS, 'GET', '/api/v1/objects/cfg/c1', app)).status === 200 ? true : undefined)
  t.equal((await call(CSS, 'POST', '/api/v1/objects/org1/cfg/c1/destinations', admin, { action: 'add', destinations: ['edge:n9'] })).status, 204)
  const m = await (await call(CSS, 'GET', '/api/v1/objects/org1/cfg/c1', admin)).json() as { destinationsList: string[] }
  t.same(m.destinationsList, ['edge:n1', 'edge:n9'])
})

t.test('open-horizon - filtered listing and object types', async (t) => {
  const list = await (await call(CSS, 'GET', '/api/v1/objects/org1?filters=true&destinationType=edge', admin)).json() as Array<Record<string, unknown>>
  t.ok(list.some((o) => o.objectID === 'model1'), 'model1 is addressed to type edge')
  t.notOk(list.some((o) => o.objectID === 'c1'), 'c1 uses a destinations list')
  t.same(await (await call(CSS, 'GET', '/api/v1/objects/org1?list_object_type=true', admin)).json(), ['cfg', 'model'])
  t.equal((await call(CSS, 'GET', '/api/v1/objects/org1?filters=true&objectType=none', admin)).status, 404)
  const all = await (await call(CSS, 'GET', '/api/v1/objects/org1/model?all_objects=true', admin)).json() as unknown[]
  t.equal(all.length, 1)
})

t.test('open-horizon - inactive objects wait for activate; received hides from the poll', async (t) => {
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/sleepy/s1', admin, { meta: { objectID: 's1', objectType: 'sleepy', destinationType: 'edge', inactive: true, noData: true } })).status, 204)
  await edgeBarrier(CSS, { key: 'ohadmin', secret: 'ohsecret' }, { restUrl: ESS }, { org: 'org1', type: 'edge', id: 'n1' }, { key: 'edgeapp', secret: 'edgesecret' })
  t.equal((await call(ESS, 'GET', '/api/v1/objects/sleepy', app)).status, 404, 'not delivered while inactive')
  const pending = await (await call(CSS, 'GET', '/api/v1/objects/org1/sleepy/s1/destinations', admin)).json() as Array<{ status: string }>
  t.equal(pending[0]?.status, 'pending')
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/sleepy/s1/activate', admin)).status, 204)
  await until('delivered after activation', async () => (await call(ESS, 'GET', '/api/v1/objects/sleepy', app)).status === 200 ? true : undefined)
  t.equal((await call(ESS, 'PUT', '/api/v1/objects/sleepy/s1/received', app)).status, 204)
  t.equal((await call(ESS, 'GET', '/api/v1/objects/sleepy', app)).status, 404, 'received objects leave the default poll')
  const withReceived = await (await call(ESS, 'GET', '/api/v1/objects/sleepy?received=true', app)).json() as Array<{ objectID: string, status: string }>
  t.match(withReceived, [{ objectID: 's1', status: 'objreceived' }])
})

t.test('open-horizon - ACL calls', async (t) => {
  const users = [{ ACLUserType: 'user', Username: 'alice', ACLRole: 'aclReader' }]
  t.equal((await call(CSS, 'PUT', '/api/v1/security/objects/org1/model', admin, { action: 'add', users })).status, 204)
  t.same(await (await call(CSS, 'GET', '/api/v1/security/objects/org1?all_keys=true', admin)).json(), ['model'])
  t.equal((await call(CSS, 'GET', '/api/v1/security/objects/org1', admin)).status, 404, 'no key: the all-types entries, none yet')
  t.same(await (await call(CSS, 'GET', '/api/v1/security/objects/org1?key=model', admin)).json(), users)
  t.equal((await call(CSS, 'PUT', '/api/v1/security/destinations/org1', admin, { action: 'add', users: [{ ACLUserType: 'user', Username: '*' }] })).status, 204)
  t.equal((await call(CSS, 'DELETE', '/api/v1/security/objects/org1/model/user/alice', admin)).status, 204)
  t.equal((await call(CSS, 'GET', '/api/v1/security/objects/org1?key=model', admin)).status, 404)
})

t.test('open-horizon - webhook registration on the ESS is called with the metadata', async (t) => {
  const hits: string[] = []
  const srv = http.createServer((req, res) => { let b = ''; req.on('data', (d: Buffer) => { b += d.toString() }); req.on('end', () => { hits.push(b); res.writeHead(200).end() }) })
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { srv.close() })
  const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}/`
  t.equal((await call(ESS, 'PUT', '/api/v1/objects/model', app, { action: 'register', url })).status, 204)
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/model/model2', admin, { meta: { objectID: 'model2', objectType: 'model', destinationType: 'edge' }, data: Buffer.from('x').toString('base64') })).status, 204)
  await until('webhook called', async () => hits.length > 0 ? true : undefined)
  t.match(JSON.parse(hits[0] ?? '{}'), { objectID: 'model2', objectType: 'model' })
  t.equal((await call(ESS, 'PUT', '/api/v1/objects/model', app, { action: 'delete', url })).status, 204)
})

t.test('open-horizon - deletion flow', async (t) => {
  await until('model2 on the edge', async () => (await call(ESS, 'GET', '/api/v1/objects/model/model2', app)).status === 200 ? true : undefined)
  t.equal((await call(CSS, 'DELETE', '/api/v1/objects/org1/model/model2', admin)).status, 204)
  const seen = await until('edge sees the delete', async () => {
    const r = await call(ESS, 'GET', '/api/v1/objects/model', app)
    const list = r.status === 200 ? await r.json() as Array<Record<string, unknown>> : []
    return list.find((o) => o.objectID === 'model2' && o.deleted === true)
  })
  t.equal(seen.status, 'objdeleted')
  t.equal((await call(ESS, 'PUT', '/api/v1/objects/model/model2/deleted', app)).status, 204)
  t.equal((await call(ESS, 'GET', '/api/v1/objects/model/model2', app)).status, 404)
  t.equal((await call(CSS, 'GET', '/api/v1/objects/org1/model/model2', admin)).status, 404)
})

t.test('open-horizon - error cases and health', async (t) => {
  t.equal((await call(CSS, 'GET', '/api/v1/objects/org1/model/nope', admin)).status, 404, 'unknown object')
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/model/bad', admin, '{"meta": {', { 'content-type': 'application/json' })).status, 400, 'bad body')
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/model/bad', admin, { nometa: true })).status, 400, 'missing meta')
  t.equal((await call(CSS, 'GET', '/api/v1/objects/org1/model/model1', 'Basic ' + Buffer.from('ohadmin:wrong').toString('base64'))).status, 401, 'wrong credentials')
  t.equal((await call(ESS, 'GET', '/api/v1/objects/model', 'Basic ' + Buffer.from('edgeapp:wrong').toString('base64'))).status, 401)
  const bob = await (await call(CSS, 'POST', '/api/v1/users/org1', admin, { appKey: 'bob' })).json() as { secret: string }
  const bobAuth = 'Basic ' + Buffer.from(`bob:${bob.secret}`).toString('base64')
  t.equal((await call(CSS, 'GET', '/api/v1/objects/org1/model/model1', bobAuth)).status, 403, 'no ACL, no access')
  t.equal((await call(CSS, 'GET', '/api/v1/objects/org2/model/model1', bobAuth)).status, 403, 'other org')
  t.equal((await call(CSS, 'PUT', '/api/v1/security/objects/org1/model', admin, { action: 'add', users: [{ ACLUserType: 'user', Username: 'bob', ACLRole: 'aclReader' }] })).status, 204)
  t.equal((await call(CSS, 'GET', '/api/v1/objects/org1/model/model1', bobAuth)).status, 200, 'reader may read')
  t.equal((await call(CSS, 'PUT', '/api/v1/objects/org1/model/m9', bobAuth, { meta: { objectID: 'm9', objectType: 'model' } })).status, 403, 'reader may not write')
  t.equal((await call(CSS, 'POST', '/api/v1/resend', admin)).status, 400, 'resend is an ESS call')
  t.equal((await call(ESS, 'POST', '/api/v1/resend', app)).status, 204)
  const health = await (await call(CSS, 'GET', '/api/v1/health', admin)).json() as { general: { nodeType: string } }
  t.equal(health.general.nodeType, 'CSS')
})
