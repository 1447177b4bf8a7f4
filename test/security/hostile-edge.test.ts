/**
 * An enrolled node turned hostile: `n2` of org1 speaks raw MQTT on its own up topic (which the
 * broker rightly lets it use) and tries to read, forge or overwrite what belongs to `n1`. Each
 * case was reproduced against the first wave; each now must be dropped, counted and harmless.
 * Every refusal is checked against a barrier: the refusal counter moves, and an allowed request
 * sent after it is answered, so "nothing happened" is never a fixed wait.
 */
import path from 'node:path'
import t from 'tap'
import type { CssHandle } from '../../src/app/css.js'
import type { RefusalReason } from '../../src/css/handlers/index.js'
import { ADMIN, basic, enroll, startCss, waitFor } from '../helpers/cluster.js'
import { connectRawNode, type RawNode } from '../helpers/raw-node.js'

const root = t.testdir()
// Small inline limit: the 300 kB objects below travel in chunks, fetched by the edge.
const css: CssHandle = await startCss(t, path.join(root, 'css'), { MaxInlineDataSize: 1024, ChunkSize: 65536 })
const admin = { authorization: basic(ADMIN) }
const url = css.mqttUrls[0] ?? ''
const secrets = new Map<string, string>()
for (const id of ['n1', 'n2', 'n3']) secrets.set(id, await enroll(css, 'org1', 'edge', id))

async function node (id: string, clientId?: string): Promise<RawNode> {
  const n = await connectRawNode({ url, org: 'org1', type: 'edge', id, secret: secrets.get(id) ?? '', ...(clientId === undefined ? {} : { clientId }) })
  t.teardown(() => n.close())
  return n
}

async function put (type: string, id: string, meta: Record<string, unknown>, data: Buffer): Promise<number> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/${type}/${id}`, {
    method: 'PUT',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ meta, data: data.toString('base64') })
  })
  // No assertion here: top-level assertions before the first subtest would end tap's root test.
  if (r.status !== 204) throw new Error(`PUT ${type}/${id} answered ${r.status}`)
  return Number(r.headers.get('x-sync-instance-id'))
}

async function destinations (type: string, id: string): Promise<Array<{ destinationID: string, status: string }>> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/${type}/${id}/destinations`, { headers: admin })
  return r.ok ? await r.json() as Array<{ destinationID: string, status: string }> : []
}

const refused = (r: RefusalReason): number => css.sync.counters.refused[r] ?? 0
async function refusedOnce (r: RefusalReason, act: () => Promise<void>): Promise<void> {
  const before = refused(r)
  await act()
  await waitFor(`a ${r} refusal`, async () => refused(r) > before ? true : undefined)
}

const big = (fill: string): Buffer => Buffer.alloc(300_000, fill)
const secretInst = await put('conf', 'secret-n1', { destinationsList: ['edge:n1'] }, big('S'))
const mineInst = await put('conf', 'for-n2', { destinationsList: ['edge:n2'] }, big('m'))

t.test('a node cannot fetch the data of an object addressed to another node, nor learn it exists', async (t) => {
  const n2 = await node('n2')
  const ref = { v: 1, kind: 'fetch', objectType: 'conf', offset: 0, length: 65536 }
  await refusedOnce('not-addressed', async () => { await n2.up({ ...ref, objectId: 'secret-n1', instanceId: secretInst }) })
  await refusedOnce('not-addressed', async () => { await n2.up({ ...ref, objectId: 'no-such-object', instanceId: 1 }) })
  // Barrier: its own object's chunk arrives, so anything about the others would have come first.
  await n2.up({ ...ref, objectId: 'for-n2', instanceId: mineInst })
  await waitFor('own chunk', async () => n2.seen.find((m) => m.kind === 'chunk' && m.head.includes('for-n2')))
  const leaks = n2.seen.filter((m) => m.head.includes('secret-n1') || m.head.includes('no-such-object'))
  t.same(leaks.map((m) => m.kind), [], 'no chunk and no "gone" about objects not addressed to n2')
})

t.test('a node cannot forge delivery state of an object addressed to another node', async (t) => {
  const n2 = await node('n2')
  const ids = { objectType: 'conf', objectId: 'secret-n1', instanceId: secretInst }
  await refusedOnce('not-addressed', async () => { await n2.up({ v: 1, kind: 'ack', state: 'received', ...ids }) })
  await refusedOnce('not-addressed', async () => { await n2.up({ v: 1, kind: 'progress', bytes: 10, ...ids }) })
  const holding = { ...ids, state: 'consumed' }
  await refusedOnce('not-addressed', async () => { await n2.up({ v: 1, kind: 'register', properties: {}, codeVersion: 'x', holdings: [holding] }) })
  await waitFor('register answered', async () => n2.seen.find((m) => m.kind === 'registered'))
  t.notOk((await destinations('conf', 'secret-n1')).some((d) => d.destinationID === 'n2'), 'no delivery record for n2 was created')

  // Delete-on-delivery: n2's "consumed" must not delete n1's object; n1's own one does.
  const autoInst = await put('conf', 'auto-n1', { destinationsList: ['edge:n1'], autodelete: true }, Buffer.from('a'))
  const auto = { objectType: 'conf', objectId: 'auto-n1', instanceId: autoInst }
  await refusedOnce('not-addressed', async () => { await n2.up({ v: 1, kind: 'ack', state: 'consumed', ...auto }) })
  const still = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/auto-n1`, { headers: admin })
  t.equal(still.status, 200, 'the autodelete object survives the forged consumed ack')
  const n1 = await node('n1')
  await refusedOnce('future-instance', async () => { await n1.up({ v: 1, kind: 'ack', state: 'consumed', ...auto, instanceId: autoInst + 5 }) })
  await n1.up({ v: 1, kind: 'ack', state: 'consumed', ...auto })
  await waitFor('n1 consumed it, so it is deleted', async () => {
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/auto-n1`, { headers: admin })
    return r.status === 404 ? true : undefined
  })
  t.pass('the addressed node\'s own consumed ack still deletes the autodelete object')
})

t.test('a node cannot write types the CSS owns (EMS injection), nor take a cloud object\'s name', async (t) => {
  const n2 = await node('n2')
  const layer = Buffer.from(JSON.stringify({ devices: [{ id: 'bat', profile: 'battery', host: '203.0.113.9', port: 502 }] }))
  const offer = (objectType: string, objectID: string, data: Buffer): Record<string, unknown> => ({
    v: 1, kind: 'offer', data: data.toString('base64'), meta: { objectType, objectID, instanceID: 1, dataID: 1, objectSize: data.length }
  })
  await refusedOnce('owned-type', async () => { await n2.up(offer('_ems-layer', 'edge.n1', layer)) })
  await refusedOnce('owned-type', async () => { await n2.up(offer('ems-config', 'n3', layer)) })
  await refusedOnce('foreign-origin', async () => { await n2.up(offer('conf', 'secret-n1', Buffer.from('overwritten'))) })
  // Barrier and control: an object of its own is stored, and n2 is told so.
  await n2.up(offer('telemetry', 't1', Buffer.from('reading')))
  await waitFor('own offer stored', async () => n2.seen.find((m) => m.kind === 'state' && m.body?.objectId === 't1'))
  t.equal(await css.store.objects.get({ orgId: 'org1', objectType: '_ems-layer', objectId: 'edge.n1' }), undefined, 'no EMS layer for n1 was created')
  t.equal(await css.store.objects.get({ orgId: 'org1', objectType: 'ems-config', objectId: 'n3' }), undefined, 'no EMS config for n3 was created')
  const layerGet = await fetch(`${css.restUrl}/api/v1/ems/org1/layers/edge:n1`, { headers: admin })
  t.equal(layerGet.status, 404, 'the EMS API shows no such layer')
  const secret = await css.store.objects.get({ orgId: 'org1', objectType: 'conf', objectId: 'secret-n1' })
  t.equal(secret?.meta.instanceID, secretInst, 'the cloud object keeps its instance')
  t.equal(secret?.meta.originType, 'cloud', 'and its origin')
  const own = await css.store.objects.get({ orgId: 'org1', objectType: 'telemetry', objectId: 't1' })
  t.equal(own?.meta.originID, 'n2', 'the edge object is stored with its real origin')

  // ems-config is a valid name owned by the EMS; `_` types are not even valid names in the API.
  for (const [type, status, code] of [['ems-config', 403, 'SYNC_ERR_FORBIDDEN'], ['_ems-layer', 400, 'SYNC_ERR_VALIDATION']] as const) {
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/${type}/n1`, {
      method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: {}, data: layer.toString('base64') })
    })
    const body = await r.json() as { code: string }
    t.same([r.status, body.code], [status, code], `the objects API refuses to write ${type}, even for the admin`)
  }
  t.equal(await css.store.objects.get({ orgId: 'org1', objectType: 'ems-config', objectId: 'n1' }), undefined, 'nothing was stored')
})

t.test('a client id belongs to the node that logs in with it', async (t) => {
  const n1 = await node('n1')
  for (const stolen of ['org1/edge/n1', 'org1/edge/n1/x']) {
    const err = await connectRawNode({ url, org: 'org1', type: 'edge', id: 'n2', secret: secrets.get('n2') ?? '', clientId: stolen }).then(
      async (c) => { await c.close(); return 0 }, (e: { code?: number }) => e.code)
    t.equal(err, 2, `n2 may not use client id ${stolen} (CONNACK 2, identifier rejected)`)
  }
  t.ok(n1.client.connected, 'n1 was not kicked off')
  const granted = await n1.client.subscribeAsync('sync/v1/org1/edge/n1/down', { qos: 1 })
  t.same(granted.map((g) => g.qos), [1], 'n1 can still subscribe to its own topic')
  const own = await node('n2', 'org1/edge/n2/second')
  t.ok(own.client.connected, 'a node may suffix its own client id')
})

t.test('an object an edge sent to the cloud is never served to another edge', async (t) => {
  const n2 = await node('n2')
  const data = Buffer.from('private reading of n2')
  await n2.up({ v: 1, kind: 'offer', data: data.toString('base64'), meta: { objectType: 'telemetry', objectID: 'private-n2', instanceID: 1, dataID: 1, objectSize: data.length } })
  await waitFor('n2\'s object stored', async () => n2.seen.find((m) => m.kind === 'state' && m.body?.objectId === 'private-n2'))
  const stored = await css.store.objects.get({ orgId: 'org1', objectType: 'telemetry', objectId: 'private-n2' })
  t.ok(stored, 'the CSS holds it')
  const n1 = await node('n1')
  const ids = { objectType: 'telemetry', objectId: 'private-n2', instanceId: stored?.meta.instanceID ?? 1 }
  await refusedOnce('not-addressed', async () => { await n1.up({ v: 1, kind: 'fetch', ...ids, offset: 0, length: 4096 }) })
  await n1.up({ v: 1, kind: 'register', properties: {}, codeVersion: 'x', holdings: [] })
  await waitFor('n1 registered', async () => n1.seen.find((m) => m.kind === 'registered'))
  t.notOk(n1.seen.some((m) => m.head.includes('private-n2')), 'n1 got neither its data nor its update, not even on register')
})

t.test('a node cannot withdraw (delete) an object another edge sent, nor a cloud object', async (t) => {
  const n3 = await node('n3')
  const data = Buffer.from('n3 reading')
  await n3.up({ v: 1, kind: 'offer', data: data.toString('base64'), meta: { objectType: 'telemetry', objectID: 'keep-n3', instanceID: 1, dataID: 1, objectSize: data.length } })
  await waitFor('n3\'s object stored', async () => n3.seen.find((m) => m.kind === 'state' && m.body?.objectId === 'keep-n3'))
  const n2 = await node('n2')
  await refusedOnce('foreign-origin', async () => { await n2.up({ v: 1, kind: 'withdraw', objectType: 'telemetry', objectId: 'keep-n3', instanceId: 99 }) })
  await refusedOnce('foreign-origin', async () => { await n2.up({ v: 1, kind: 'withdraw', objectType: 'conf', objectId: 'for-n2', instanceId: 99 }) })
  t.ok(await css.store.objects.get({ orgId: 'org1', objectType: 'telemetry', objectId: 'keep-n3' }), 'n3\'s object stays')
  t.ok(await css.store.objects.get({ orgId: 'org1', objectType: 'conf', objectId: 'for-n2' }), 'the cloud object addressed to n2 stays')
})
