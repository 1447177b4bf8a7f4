/**
 * The rest of Open Horizon's REST surface, as its policy engine (agbot, a Go program) and its
 * exchange call it: destination policies (list, policyreceived, placement by destinations) and
 * organizations (list, put, delete). Requests are sent as Go's net/http writes them.
 */
import path from 'node:path'
import t from 'tap'
import { edgeBarrier } from '../helpers/barrier.js'
import { ADMIN, APP, basic, enroll, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { goClient, type WireAnswer } from '../helpers/wire.js'

const root = t.testdir()
const css = await startCss(t, path.join(root, 'css'))
const n1 = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'n1' })
const n2 = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'n2' })
const admin = basic(ADMIN)
const call = async (method: string, p: string, json?: unknown, auth = admin): Promise<WireAnswer> =>
  await goClient.request(css.restUrl, method, p, auth, json === undefined ? undefined : { json })
const body = (a: WireAnswer): unknown => JSON.parse(a.body.toString())
const held = async (ess: { restUrl: string }, id: string): Promise<number> =>
  (await fetch(`${ess.restUrl}/api/v1/objects/placed/${id}`, { headers: { authorization: basic(APP) } })).status

const orgAdmin = await (await fetch(`${css.restUrl}/api/v1/users/org1`, {
  method: 'POST',
  headers: { authorization: admin, 'content-type': 'application/json' },
  body: JSON.stringify({ appKey: 'boss', role: 'orgAdmin' })
})).json() as { secret: string }
const boss = basic({ key: 'boss', secret: orgAdmin.secret })

const policy = {
  properties: [{ name: 'site', value: 'A' }],
  constraints: ['arch == amd64'],
  services: [{ orgID: 'org1', arch: 'amd64', serviceName: 'meter-reader', version: '1.0.0' }],
  timestamp: 1700000000
}

t.test('policies - an object with a destination policy goes nowhere until its destinations are set', async (t) => {
  const meta = { objectID: 'p1', objectType: 'placed', destinationType: '', destinationsList: null, destinationPolicy: policy, noData: true }
  t.equal((await call('PUT', '/api/v1/objects/org1/placed/p1', { meta })).status, 204)
  for (const [ess, id] of [[n1, 'n1'], [n2, 'n2']] as const) {
    await edgeBarrier(css.restUrl, ADMIN, ess, { org: 'org1', type: 'edge', id }, APP)
    t.equal(await held(ess, 'p1'), 404, `${id} did not get it`)
  }
  const listed = await call('GET', '/api/v1/objects/org1?destination_policy=true')
  t.equal(listed.status, 200)
  t.same(body(listed), [{ orgID: 'org1', objectType: 'placed', objectID: 'p1', destinationPolicy: policy, destinations: [] }])
})

t.test('policies - policyreceived hides it from the default listing; received, service and since still find it', async (t) => {
  t.equal((await call('PUT', '/api/v1/objects/org1/placed/p1/policyreceived')).status, 204)
  t.equal((await call('GET', '/api/v1/objects/org1?destination_policy=true')).status, 404)
  t.equal((await call('GET', '/api/v1/objects/org1?destination_policy=true&received=true')).status, 200)
  t.equal((await call('GET', '/api/v1/objects/org1?destination_policy=true&service=org1/meter-reader')).status, 200)
  t.equal((await call('GET', '/api/v1/objects/org1?destination_policy=true&service=org1/other')).status, 404)
  t.equal((await call('GET', '/api/v1/objects/org1?destination_policy=true&since=1800000000')).status, 404)
  const all = await call('GET', '/api/v1/objects?destination_policy=true&received=true')
  t.match(body(all), [{ orgID: 'org1', objectID: 'p1' }], 'every org, for a sync admin')
  t.equal((await call('GET', '/api/v1/objects?destination_policy=true', undefined, boss)).status, 403, 'not for an org admin')
  const plain = { meta: { objectID: 'q1', objectType: 'placed', destinationType: 'edge', noData: true } }
  t.equal((await call('PUT', '/api/v1/objects/org1/placed/q1', plain)).status, 204)
  const refused = await call('PUT', '/api/v1/objects/org1/placed/q1/policyreceived')
  t.same([refused.status, (body(refused) as { code: string }).code], [400, 'SYNC_ERR_VALIDATION'], 'an object without a policy')
  t.equal((await call('PUT', '/api/v1/objects/org1/placed/nope/policyreceived')).status, 404)
})

t.test('policies - the engine sets the destinations: exactly those get it, and the listing shows their state', async (t) => {
  t.equal((await call('PUT', '/api/v1/objects/org1/placed/p1/destinations', ['edge:n1'])).status, 204)
  await waitFor('p1 on n1', async () => (await held(n1, 'p1')) === 200 ? true : undefined)
  await edgeBarrier(css.restUrl, ADMIN, n2, { org: 'org1', type: 'edge', id: 'n2' }, APP)
  t.equal(await held(n2, 'p1'), 404, 'n2 still has nothing')
  const listed = await waitFor('n1 listed as delivered', async () => {
    const a = await call('GET', '/api/v1/objects/org1?destination_policy=true')
    const item = a.status === 200 ? (body(a) as Array<{ destinations: Array<{ destinationID: string, status: string }> }>)[0] : undefined
    return item?.destinations.some((d) => d.destinationID === 'n1' && d.status !== 'pending') === true ? item : undefined
  })
  t.match(listed.destinations, [{ destinationType: 'edge', destinationID: 'n1', message: '' }])
})

t.test('organizations - list, accept, refuse a broker of its own, delete with everything in it', async (t) => {
  const secret = await enroll(css, 'org2', 'edge', 'x1')
  t.equal((await call('PUT', '/api/v1/objects/org2/cfg/c1', { meta: { objectID: 'c1', objectType: 'cfg', noData: true } })).status, 204)
  t.equal((await call('PUT', '/api/v1/security/objects/org2/cfg', { action: 'add', usernames: ['someone'] })).status, 204)
  const list = await call('GET', '/api/v1/organizations')
  t.same((body(list) as Array<{ 'org-id': string }>).map((o) => o['org-id']), ['org1', 'org2'])
  t.match(body(list), [{ address: css.mqttUrls[0] }])
  t.same((body(await call('GET', '/api/v1/organizations', undefined, boss)) as Array<{ 'org-id': string }>).map((o) => o['org-id']), ['org1'], 'an org admin sees its own')
  t.equal((await call('PUT', '/api/v1/organizations/org3', { orgID: 'org3' })).status, 204)
  const foreign = await call('PUT', '/api/v1/organizations/org3', { orgID: 'org3', address: 'mqtt://elsewhere:1883' })
  t.equal(foreign.status, 400)
  t.match((body(foreign) as { detail: string }).detail, /one broker|its own broker/)
  t.equal((await call('DELETE', '/api/v1/organizations/org2', undefined, boss)).status, 403, 'not another org\'s admin')
  t.equal((await call('DELETE', '/api/v1/organizations/org2')).status, 204)
  t.same((body(await call('GET', '/api/v1/organizations')) as Array<{ 'org-id': string }>).map((o) => o['org-id']), ['org1'])
  t.equal((await call('GET', '/api/v1/objects/org2/cfg/c1')).status, 404, 'its objects are gone')
  t.equal((await call('GET', '/api/v1/security/objects/org2/cfg')).status, 404, 'its ACLs are gone')
  t.same(body(await call('GET', '/api/v1/destinations/org2')), [], 'its nodes are gone')
  const login = await fetch(`${css.restUrl}/api/v1/link/down?session=org2-x1-session&wait=0`, { headers: { authorization: basic({ key: 'org2/edge/x1', secret }) } })
  t.equal(login.status, 401, 'its node credentials no longer work')
})
