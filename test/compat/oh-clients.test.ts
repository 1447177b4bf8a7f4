/**
 * Every call of Open Horizon's published client SDKs (`edge-sync-service-client`: Go
 * `client/client.go` and Python `python/client/SyncServiceClient.py`), sent byte for byte as each
 * client writes it (test/helpers/wire.ts), against real sync-css and sync-ess processes. Each
 * answer is checked the way the client reads it: Go decodes JSON into its structs (a field of the
 * wrong type fails the call), Python `.get()`s and `str()`s fields of a list of objects; a 404 is an
 * empty answer to both; status codes decide success (Go: any 2xx; Python: 2xx, or exactly 200 where
 * it says so).
 */
import http from 'node:http'
import t from 'tap'
import type { Test } from 'tap'
import { startCssAndEss } from '../helpers/processes.js'
import { goClient, pythonClient, type Wire, type WireAnswer } from '../helpers/wire.js'

const root = t.testdir()
const basicOf = (k: string, s: string): string => 'Basic ' + Buffer.from(`${k}:${s}`).toString('base64')
const admin = basicOf('ohadmin', 'ohsecret')
const app = basicOf('edgeapp', 'edgesecret')
const { CSS, ESS } = await startCssAndEss(t, root)

// A user the ACL calls grant access to (created with edgesync's own API: setup only).
const alice = await (await fetch(`${CSS}/api/v1/users/org1`, {
  method: 'POST',
  headers: { authorization: admin, 'content-type': 'application/json' },
  body: JSON.stringify({ appKey: 'alice' })
})).json() as { secret: string }
const aliceAuth = basicOf('alice', alice.secret)

// A webhook receiver for the CSS's and the ESS's hooks.
const hooks: Array<{ path: string, body: Record<string, unknown> }> = []
const hookServer = http.createServer((req, res) => {
  let b = ''
  req.on('data', (d: Buffer) => { b += d.toString() })
  req.on('end', () => { hooks.push({ path: req.url ?? '', body: JSON.parse(b || '{}') as Record<string, unknown> }); res.writeHead(200).end() })
})
await new Promise<void>((resolve) => hookServer.listen(0, '127.0.0.1', resolve))
t.teardown(() => { hookServer.close() })
const HOOK = `http://127.0.0.1:${(hookServer.address() as { port: number }).port}`

// The client structs, field by field as encoding/json decodes them.
type Kind = 's' | 'b' | 'i' | '[s]'
const META: Record<string, Kind> = {
  objectID: 's',
  objectType: 's',
  destinationID: 's',
  destinationType: 's',
  destinationsList: '[s]',
  expiration: 's',
  version: 's',
  description: 's',
  link: 's',
  inactive: 'b',
  activationTime: 's',
  doNotSend: 'b',
  noData: 'b',
  metaOnly: 'b',
  consumers: 'i',
  destinationDataUri: 's',
  sourceDataUri: 's',
  autodelete: 'b',
  originID: 's',
  originType: 's',
  deleted: 'b',
  instanceID: 'i'
}
const DESTINATION: Record<string, Kind> = { destinationOrgID: 's', destinationType: 's', destinationID: 's', communication: 's', codeVersion: 's' }
const DEST_STATUS: Record<string, Kind> = { destinationType: 's', destinationID: 's', status: 's', message: 's' }
const OBJ_STATUS: Record<string, Kind> = { orgID: 's', objectType: 's', objectID: 's', status: 's' }

function fits (v: unknown, k: Kind): boolean {
  if (v === null) return true // encoding/json leaves the zero value
  if (k === 's') return typeof v === 'string'
  if (k === 'b') return typeof v === 'boolean'
  if (k === 'i') return Number.isInteger(v)
  return Array.isArray(v) && v.every((x) => typeof x === 'string')
}

/** What the client makes of a JSON answer: Go's struct decode, or Python's list of dicts. */
function decoded (t: Test, wire: Wire, a: WireAnswer, shape: Record<string, Kind>, list: boolean): Array<Record<string, unknown>> {
  if (a.status === 404) return []
  t.equal(a.status, 200, `${wire.name}: 200`)
  const v = JSON.parse(a.body.toString()) as unknown
  const items = (list ? v : [v]) as Array<Record<string, unknown>>
  t.ok(Array.isArray(items) && items.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x)), 'objects, as the client expects')
  if (wire === goClient) {
    for (const item of items) {
      const wrong = Object.entries(shape).filter(([f, k]) => f in item && !fits(item[f], k)).map(([f]) => f)
      t.same(wrong, [], 'every field the Go struct has decodes into its type')
    }
  }
  return items
}

interface Client {
  wire: Wire
  /** The metadata body of UpdateObject as this client serialises its struct. */
  meta: (fields: Record<string, unknown>) => Record<string, unknown>
  resend: 'PUT' | 'POST'
  /** How a file goes up in UpdateObjectData: Go streams an os.File chunked, Python sends its size. */
  data: (b: Buffer) => { stream: Buffer } | { bytes: Buffer }
  type: string
}

function goMeta (f: Record<string, unknown>): Record<string, unknown> {
  const zero: Record<string, unknown> = {
    objectID: '',
    objectType: '',
    destinationID: '',
    destinationType: '',
    destinationsList: null,
    expiration: '',
    version: '',
    description: '',
    link: '',
    inactive: false,
    activationTime: '',
    doNotSend: false,
    noData: false,
    metaOnly: false,
    consumers: 0,
    destinationDataUri: '',
    sourceDataUri: '',
    autodelete: false,
    originID: '',
    originType: '',
    deleted: false,
    instanceID: 0
  }
  return Object.fromEntries(Object.keys(zero).map((k) => [k, k in f ? f[k] : zero[k]]))
}

function pythonMeta (f: Record<string, unknown>): Record<string, unknown> {
  // MetaData._dict(): consumers defaults to 1, destinationOrgID is sent, an empty list is left out.
  const base: Record<string, unknown> = {
    activationTime: '',
    autodelete: false,
    consumers: 1,
    deleted: false,
    description: '',
    destinationDataUri: '',
    destinationID: '',
    destinationOrgID: '',
    destinationType: '',
    doNotSend: false,
    expiration: '',
    inactive: false,
    link: '',
    metaOnly: false,
    noData: false,
    objectID: '',
    objectType: '',
    originID: '',
    originType: '',
    sourceDataUri: '',
    version: '',
    instanceID: 0
  }
  const out = Object.fromEntries(Object.keys(base).map((k) => [k, k in f ? f[k] : base[k]]))
  const list = f.destinationsList as string[] | undefined
  if (list !== undefined && list.length > 0) out.destinationsList = list
  return out
}

const clients: Client[] = [
  { wire: goClient, meta: goMeta, resend: 'PUT', data: (b) => ({ stream: b }), type: 'gomodel' },
  { wire: pythonClient, meta: pythonMeta, resend: 'POST', data: (b) => ({ bytes: b }), type: 'pymodel' }
]

async function until<T> (what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await fn()
    if (v !== undefined) return v
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(`timed out: ${what}`)
}

for (const c of clients) {
  const w = c.wire
  const T = c.type
  const onCss = (m: string, p: string, body?: Parameters<Wire['request']>[4], auth = admin): Promise<WireAnswer> => w.request(CSS, m, p, auth, body)
  const onEss = (m: string, p: string, body?: Parameters<Wire['request']>[4]): Promise<WireAnswer> => w.request(ESS, m, p, app, body)
  const payload = Buffer.from(`${w.name} data `.repeat(5000))

  t.test(`${w.name} on the CSS: UpdateObject, GetObjectStatus, UpdateObjectData, GetObjectMetadata, FetchObjectData`, async (t) => {
    const meta = c.meta({ objectID: 'o1', objectType: T, destinationType: 'edge', version: '1.0', description: 'from the client' })
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}/o1`, { json: { meta } })).status, 204, 'UpdateObject: 2xx')
    const st = await onCss('GET', `/api/v1/objects/org1/${T}/o1/status`)
    t.same([st.status, st.body.toString()], [200, 'notReady'], 'GetObjectStatus: the body is the status')
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}/o1/data`, c.data(payload))).status, 204, 'UpdateObjectData: 2xx (Python wants 200: see docs/compatibility.md)')
    t.equal((await onCss('GET', `/api/v1/objects/org1/${T}/o1/status`)).body.toString(), 'ready')
    const [m] = decoded(t, w, await onCss('GET', `/api/v1/objects/org1/${T}/o1`), META, false)
    t.match(m, { objectID: 'o1', objectType: T, destinationType: 'edge', version: '1.0', description: 'from the client', consumers: 1 })
    t.notOk(m?.deleted, 'not deleted (absent reads as false in both clients)')
    t.ok(Number(m?.instanceID) > 0, 'instanceID set')
    const data = await onCss('GET', `/api/v1/objects/org1/${T}/o1/data`)
    t.same([data.status, data.body.equals(payload)], [200, true], 'FetchObjectData: 200 (Python wants exactly 200), the bytes sent')
    t.equal((await onCss('GET', `/api/v1/objects/org1/${T}/missing`)).status, 404, 'GetObjectMetadata of a missing object: 404, which both clients read as none')
  })

  t.test(`${w.name} on the ESS: StartPollingForUpdates (received=true first), GetObjectMetadata, GetObjectStatus, FetchObjectData, MarkObjectReceived, MarkObjectConsumed`, async (t) => {
    const first = await until('o1 polled on the edge', async () => {
      const a = await onEss('GET', `/api/v1/objects/${T}?received=true`)
      return a.status === 200 ? a : undefined
    })
    const polled = decoded(t, w, first, META, true)
    t.match(polled, [{ objectID: 'o1', objectType: T, version: '1.0' }])
    const again = decoded(t, w, await onEss('GET', `/api/v1/objects/${T}`), META, true)
    t.same(again.map((o) => o.instanceID), polled.map((o) => o.instanceID), 'the later polls list it until it is received')
    const [m] = decoded(t, w, await onEss('GET', `/api/v1/objects/${T}/o1`), META, false)
    t.equal(m?.instanceID, polled[0]?.instanceID)
    t.equal((await onEss('GET', `/api/v1/objects/${T}/o1/status`)).body.toString(), 'completelyReceived')
    const data = await onEss('GET', `/api/v1/objects/${T}/o1/data`)
    t.same([data.status, data.body.equals(payload)], [200, true])
    t.equal((await onEss('PUT', `/api/v1/objects/${T}/o1/received`)).status, 204, 'MarkObjectReceived')
    t.equal((await onEss('GET', `/api/v1/objects/${T}`)).status, 404, 'received: gone from the plain poll')
    t.equal((await onEss('PUT', `/api/v1/objects/${T}/o1/consumed`)).status, 204, 'MarkObjectConsumed')
  })

  t.test(`${w.name} on the CSS: GetObjectDestinations, GetDestinations, GetDestinationObjects, ActivateObject`, async (t) => {
    const dests = await until('consumed in the CSS', async () => {
      const list = decoded(t, w, await onCss('GET', `/api/v1/objects/org1/${T}/o1/destinations`), DEST_STATUS, true)
      return list[0]?.status === 'consumed' ? list : undefined
    })
    t.match(dests, [{ destinationType: 'edge', destinationID: 'n1', status: 'consumed', message: '' }])
    const nodes = decoded(t, w, await onCss('GET', '/api/v1/destinations/org1'), DESTINATION, true)
    t.match(nodes, [{ destinationOrgID: 'org1', destinationType: 'edge', destinationID: 'n1', communication: 'mqtt' }])
    t.type(nodes[0]?.codeVersion, 'string')
    const objs = decoded(t, w, await onCss('GET', '/api/v1/destinations/org1/edge/n1/objects'), OBJ_STATUS, true)
    t.match(objs.find((o) => o.objectID === 'o1'), { orgID: 'org1', objectType: T, objectID: 'o1', status: 'consumed' })
    const inactive = c.meta({ objectID: 'late', objectType: T, destinationType: 'edge', inactive: true, noData: true })
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}/late`, { json: { meta: inactive } })).status, 204)
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}/late/activate`)).status, 204, 'ActivateObject: no body, Content-Length: 0')
    await until('activated object on the edge', async () => (await onEss('GET', `/api/v1/objects/${T}/late`)).status === 200 ? true : undefined)
  })

  t.test(`${w.name}: RegisterWebhook and DeleteWebhook on both sides; the hooks are called`, async (t) => {
    t.equal((await onEss('PUT', `/api/v1/objects/${T}`, { json: { action: 'register', url: `${HOOK}/ess-${T}` } })).status, 204, 'ESS RegisterWebhook')
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}`, { json: { action: 'register', url: `${HOOK}/css-${T}` } })).status, 204, 'CSS RegisterWebhook')
    const meta = c.meta({ objectID: 'hooked', objectType: T, destinationType: 'edge', noData: true })
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}/hooked`, { json: { meta } })).status, 204)
    const essHook = await until('ESS hook', async () => hooks.find((h) => h.path === `/ess-${T}` && h.body.objectID === 'hooked'))
    t.equal(essHook.body.objectType, T)
    // An object an edge app creates reaches the CSS, whose hook is called.
    const edgeMeta = c.meta({ objectID: 'from-edge', objectType: T })
    t.equal((await onEss('PUT', `/api/v1/objects/${T}/from-edge`, { json: { meta: edgeMeta } })).status, 204, 'ESS UpdateObject (no org in the path)')
    t.equal((await onEss('PUT', `/api/v1/objects/${T}/from-edge/data`, c.data(Buffer.from('edge bytes')))).status, 204, 'ESS UpdateObjectData')
    // The metadata and then the data each arrive as an instance: wait for the one with the data.
    const cssHook = await until('CSS hook', async () => hooks.find((h) => h.path === `/css-${T}` && h.body.objectID === 'from-edge' && h.body.objectSize === 10))
    t.equal(cssHook.body.objectType, T)
    t.equal((await onEss('PUT', `/api/v1/objects/${T}`, { json: { action: 'delete', url: `${HOOK}/ess-${T}` } })).status, 204, 'ESS DeleteWebhook')
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}`, { json: { action: 'delete', url: `${HOOK}/css-${T}` } })).status, 204, 'CSS DeleteWebhook')
  })

  t.test(`${w.name} on the CSS: polling for objects from edges, MarkObjectReceived, MarkObjectConsumed; the edge sees consumedByDest`, async (t) => {
    const first = decoded(t, w, await onCss('GET', `/api/v1/objects/org1/${T}?received=true`), META, true)
    t.match(first, [{ objectID: 'from-edge', objectType: T, originType: 'edge', originID: 'n1' }])
    t.equal((await onCss('GET', `/api/v1/objects/org1/${T}/from-edge/data`)).body.toString(), 'edge bytes')
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}/from-edge/received`)).status, 204)
    t.equal((await onCss('GET', `/api/v1/objects/org1/${T}`)).status, 404, 'received: gone from the plain poll')
    t.equal((await onCss('PUT', `/api/v1/objects/org1/${T}/from-edge/consumed`)).status, 204)
    await until('consumedByDest on the edge', async () => (await onEss('GET', `/api/v1/objects/${T}/from-edge/status`)).body.toString() === 'consumedByDest' ? true : undefined)
    t.equal((await onEss('DELETE', `/api/v1/objects/${T}/from-edge`)).status, 204, 'ESS DeleteObject of its own object')
  })

  t.test(`${w.name}: DeleteObject on the CSS, the edge polls deleted: true, MarkObjectDeleted`, async (t) => {
    t.equal((await onCss('DELETE', `/api/v1/objects/org1/${T}/o1`)).status, 204, 'DeleteObject: no body')
    const gone = await until('delete polled on the edge', async () => {
      const a = await onEss('GET', `/api/v1/objects/${T}`)
      return a.status === 200 ? decoded(t, w, a, META, true).find((o) => o.objectID === 'o1' && o.deleted === true) : undefined
    })
    t.equal(gone.deleted, true)
    t.equal((await onEss('PUT', `/api/v1/objects/${T}/o1/deleted`)).status, 204, 'MarkObjectDeleted')
    t.equal((await onEss('GET', `/api/v1/objects/${T}/o1`)).status, 404)
  })

  t.test(`${w.name}: Resend (${c.resend}) on the ESS shows held objects again`, async (t) => {
    t.equal((await onEss(c.resend, '/api/v1/resend')).status, 204)
    t.equal((await onCss(c.resend, '/api/v1/resend')).status, 400, 'the CSS answers 400: an ESS call')
  })

  t.test(`${w.name} ACL calls: Add/Remove users to object and destination ACLs, Retrieve one and all`, async (t) => {
    for (const kind of ['objects', 'destinations']) {
      const key = kind === 'objects' ? T : 'edge'
      const put = (action: string): Promise<WireAnswer> => onCss('PUT', `/api/v1/security/${kind}/org1/${key}`, { json: { action, usernames: ['alice', 'bob'] } })
      t.equal((await put('add')).status, 204, `AddUsersTo ${kind} ACL, as {action, usernames}`)
      const one = await onCss('GET', `/api/v1/security/${kind}/org1/${key}`)
      t.equal(one.status, 200)
      // Open Horizon answers ACL entries here; the Go client's []string decode fails on them (on
      // Open Horizon as here), Python str()s each. The names are there either way.
      const names = (JSON.parse(one.body.toString()) as Array<{ Username: string }>).map((e) => e.Username).sort()
      t.same(names, ['alice', 'bob'], `Retrieve ${kind} ACL names the users`)
      const all = await onCss('GET', `/api/v1/security/${kind}/org1`)
      t.equal(all.status, 404, `RetrieveAll ${kind} ACLs: no all-types entries (404), which both clients read as none`)
    }
    const asAlice = await onCss('GET', `/api/v1/objects/org1/${T}/late`, undefined, aliceAuth)
    t.equal(asAlice.status, 200, 'a user added by name may use the type')
    for (const kind of ['objects', 'destinations']) {
      const key = kind === 'objects' ? T : 'edge'
      t.equal((await onCss('PUT', `/api/v1/security/${kind}/org1/${key}`, { json: { action: 'remove', usernames: ['alice', 'bob'] } })).status, 204, `RemoveUsersFrom ${kind} ACL`)
      t.equal((await onCss('GET', `/api/v1/security/${kind}/org1/${key}`)).status, 404, 'empty again')
    }
    t.equal((await onCss('GET', `/api/v1/objects/org1/${T}/late`, undefined, aliceAuth)).status, 403, 'and alice is out')
  })
}
