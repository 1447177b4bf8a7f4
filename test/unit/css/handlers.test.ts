/**
 * The CSS protocol core without a broker: CloudSync over the memory store and an in-process fake
 * transport that records every publish. Each ESS message kind, duplicates and reorderings, in
 * milliseconds. (The e2e suites cover the same paths through real brokers and processes.)
 */
import { memorySettings } from '../../../src/storage/index.js'
import path from 'node:path'
import t, { type Test } from 'tap'
import { buildConfig } from '../../../src/common/config/load.js'
import type { ObjectMetadata } from '../../../src/common/model.js'
import { decodeDown, type DownMessage } from '../../../src/common/protocol/messages.js'
import { StatusWriter } from '../../../src/css/status-writer.js'
import { CloudSync } from '../../../src/css/sync.js'
import { OrgSigningKeys } from '../../../src/security/index.js'
import { createMemoryStore, type Store } from '../../../src/storage/index.js'
import type { CloudTransport } from '../../../src/transport/index.js'
import { captureLogger } from '../../helpers/capture-log.js'
import { waitFor } from '../../helpers/cluster.js'

interface Rig {
  store: Store
  sync: CloudSync
  /** Every publish, decoded: [topic, message]. */
  sent: Array<[string, DownMessage]>
  outcomes: string[]
  say: (node: string, msg: Record<string, unknown>) => Promise<void>
  put: (id: string, meta: Partial<ObjectMetadata>, data?: Buffer) => Promise<number>
}

async function rig (t: Test): Promise<Rig> {
  const store = createMemoryStore({ historyRetention: 3 })
  const sent: Array<[string, DownMessage]> = []
  const transport: CloudTransport = {
    urls: [],
    publish: async (topic, payload) => { sent.push([topic, decodeDown(payload)]) },
    onMessage: () => {},
    onPresence: () => {},
    disconnect: () => {},
    connected: () => true,
    close: async () => {}
  }
  const cfg = buildConfig({}, {}, { PersistenceRootPath: t.testdirName, MaxInlineDataSize: 64, ChunkSize: 1024 })
  const log = captureLogger()
  const status = new StatusWriter(store, log)
  const outcomes: string[] = []
  const sync = new CloudSync({
    store,
    transport,
    status,
    cfg,
    log,
    transferDir: path.join(t.testdirName, 'transfers'),
    signer: new OrgSigningKeys(memorySettings()),
    hooks: {
      allConsumed: async (key) => { await sync.removeObject(key) },
      outcome: async (node, ack) => { outcomes.push(`${node.destinationId} ${ack.objectId}#${ack.instanceId} ${ack.state}`) },
      registered: async () => {}
    },
    ownsType: (type) => type.startsWith('_') || type === 'owned'
  })
  t.teardown(async () => { await sync.uplink.close() })
  for (const id of ['n1', 'n2']) await store.nodes.upsert({ orgId: 'o', destinationType: 'edge', destinationId: id, properties: {}, protocol: 'mqtt', online: true, registeredAt: '', lastHeartbeat: '' })
  return {
    store,
    sync,
    sent,
    outcomes,
    say: async (node, msg) => { await sync.onMessage(`sync/v1/o/edge/${node}/up`, Buffer.from(JSON.stringify({ v: 1, ...msg }))) },
    put: async (id, meta, data) => {
      const blob = data === undefined ? undefined : await store.blobs.write([data])
      const obj = await store.objects.put({ orgId: 'o', objectType: 'conf', objectId: id }, () => ({
        meta: { objectID: id, objectType: 'conf', destinationOrgID: 'o', dataID: 0, objectSize: blob?.size ?? 0, originType: 'cloud', originID: 'cloud', ...(blob === undefined ? {} : { dataHash: blob.sha256 }), ...meta },
        status: 'ready',
        ...(blob === undefined ? {} : { dataRef: blob.ref })
      }))
      await sync.publish(obj)
      return obj.meta.instanceID
    }
  }
}

const delivery = async (r: Rig, id: string, node: string): Promise<string | undefined> => {
  const d = await r.store.deliveries.get({ orgId: 'o', objectType: 'conf', objectId: id }, { orgId: 'o', destinationType: 'edge', destinationId: node })
  return d === undefined ? undefined : `${d.status}#${d.instanceId}`
}

t.test('ack: received then consumed moves forward; duplicates and old acks change nothing', async (t) => {
  t.testdir()
  const r = await rig(t)
  const i1 = await r.put('a', { destinationType: 'edge' })
  t.equal(await delivery(r, 'a', 'n1'), `delivering#${i1}`, 'publish records delivering')
  await r.say('n1', { kind: 'ack', state: 'consumed', objectType: 'conf', objectId: 'a', instanceId: i1 })
  await r.say('n1', { kind: 'ack', state: 'received', objectType: 'conf', objectId: 'a', instanceId: i1 }) // reordered
  await r.say('n1', { kind: 'ack', state: 'consumed', objectType: 'conf', objectId: 'a', instanceId: i1 }) // duplicate
  t.equal(await delivery(r, 'a', 'n1'), `consumed#${i1}`, 'a late "received" does not move consumed back')
  t.same(r.outcomes, [`n1 a#${i1} consumed`, `n1 a#${i1} consumed`], 'the outcome hook sees each verdict')
  const i2 = await r.put('a', { destinationType: 'edge', version: '2' })
  await r.say('n1', { kind: 'ack', state: 'consumed', objectType: 'conf', objectId: 'a', instanceId: i1 }) // old instance
  t.equal(await delivery(r, 'a', 'n1'), `delivering#${i2}`, 'an ack of the old instance after the new one changes nothing')
})

t.test('ack before the update is stored, future instances and foreign objects are refused', async (t) => {
  t.testdir()
  const r = await rig(t)
  const i1 = await r.put('only-n1', { destinationsList: ['edge:n1'] })
  await r.say('n1', { kind: 'ack', state: 'received', objectType: 'conf', objectId: 'only-n1', instanceId: i1 + 1 })
  await r.say('n2', { kind: 'ack', state: 'consumed', objectType: 'conf', objectId: 'only-n1', instanceId: i1 })
  await r.say('n2', { kind: 'progress', bytes: 5, objectType: 'conf', objectId: 'only-n1', instanceId: i1 })
  t.same(r.sync.counters.refused, { 'future-instance': 1, 'not-addressed': 2 })
  t.equal(await delivery(r, 'only-n1', 'n2'), undefined, 'no record for a node it was not addressed to')
  t.equal(await delivery(r, 'only-n1', 'n1'), `delivering#${i1}`)
})

t.test('register: holdings rebuild state, missed instances are resent, deletes are signed, strays refused', async (t) => {
  t.testdir()
  const r = await rig(t)
  const a = await r.put('a', { destinationType: 'edge' })
  const b = await r.put('b', { destinationType: 'edge' }, Buffer.from('bee'))
  const gone = await r.put('gone', { destinationType: 'edge' })
  const deleted = await r.store.objects.put({ orgId: 'o', objectType: 'conf', objectId: 'gone' }, (c) => ({ meta: { ...(c?.meta as ObjectMetadata), deleted: true }, status: 'ready' }))
  r.sent.length = 0
  await r.say('n1', {
    kind: 'register',
    properties: {},
    codeVersion: 't',
    holdings: [
      { objectType: 'conf', objectId: 'a', instanceId: a, state: 'consumed' },
      { objectType: 'conf', objectId: 'gone', instanceId: gone, state: 'received' },
      { objectType: 'conf', objectId: 'elsewhere', instanceId: 1, state: 'consumed' }
    ]
  })
  t.equal(await delivery(r, 'a', 'n1'), `consumed#${a}`, 'a crash-lost status is rebuilt from the holding')
  const kinds = r.sent.map(([, m]) => m.kind === 'update' ? `update ${m.meta.objectID}` : m.kind === 'delete' ? `delete ${m.objectId}` : m.kind)
  t.same(kinds, ['update b', 'delete gone', 'registered'], 'what it misses is resent, then "registered"')
  const del = r.sent.find(([, m]) => m.kind === 'delete')?.[1]
  t.ok(del?.kind === 'delete' && del.sig !== undefined && del.instanceId === deleted.meta.instanceID, 'the delete is signed')
  const upd = r.sent.find(([, m]) => m.kind === 'update')?.[1]
  t.ok(upd?.kind === 'update' && upd.meta.instanceID === b && upd.data === Buffer.from('bee').toString('base64'), 'small data inline')
  t.equal(r.sync.counters.refused['not-addressed'], 1, 'the stray holding is refused')
})

t.test('fetch: served for an addressed instance, silence otherwise', async (t) => {
  t.testdir()
  const r = await rig(t)
  const big = await r.put('big', { destinationsList: ['edge:n1'] }, Buffer.alloc(3000, 'x')) // > inline limit
  r.sent.length = 0
  await r.say('n1', { kind: 'fetch', objectType: 'conf', objectId: 'big', instanceId: big, offset: 1024, length: 1024 })
  // Served after the message is acknowledged (a fetch changes nothing durable).
  await waitFor('the chunk', async () => r.sent.length > 0 ? true : undefined)
  t.same(r.sent.map(([topic, m]) => `${topic} ${m.kind}`), ['sync/v1/o/edge/n1/down chunk'], 'one chunk to the asker')
  const chunk = r.sent[0]?.[1]
  t.ok(chunk?.kind === 'chunk' && chunk.offset === 1024 && chunk.data.length === 1024)
  r.sent.length = 0
  await r.say('n2', { kind: 'fetch', objectType: 'conf', objectId: 'big', instanceId: big, offset: 0, length: 1024 })
  await r.say('n1', { kind: 'fetch', objectType: 'conf', objectId: 'nope', instanceId: 1, offset: 0, length: 1024 })
  // Barrier: an allowed fetch sent after them is answered; nothing came before it.
  await r.say('n1', { kind: 'fetch', objectType: 'conf', objectId: 'big', instanceId: big, offset: 0, length: 1024 })
  await waitFor('the allowed chunk', async () => r.sent.length > 0 ? true : undefined)
  t.same(r.sent.map(([topic, m]) => `${topic} ${m.kind === 'chunk' ? m.offset : m.kind}`), ['sync/v1/o/edge/n1/down 0'], 'nothing at all for a foreign or missing object')
})

t.test('offer: inline edge objects stored with their real origin; owned types and foreign names refused', async (t) => {
  t.testdir()
  const r = await rig(t)
  await r.put('cloud-name', { destinationType: 'edge' })
  const data = Buffer.from('reading')
  const offer = (type: string, id: string): Record<string, unknown> => ({ kind: 'offer', data: data.toString('base64'), meta: { objectType: type, objectID: id, instanceID: 3, dataID: 3, objectSize: data.length, public: true, destinationsList: ['edge:n2'] } })
  await r.say('n1', offer('telemetry', 't1'))
  await r.say('n1', offer('telemetry', 't1')) // repeated: answered, not stored twice
  await r.say('n1', offer('owned', 'x'))
  await r.say('n1', offer('_layer', 'x'))
  await r.say('n1', offer('conf', 'cloud-name'))
  const o = await r.store.objects.get({ orgId: 'o', objectType: 'telemetry', objectId: 't1' })
  t.same([o?.meta.originID, o?.meta.originInstanceID, o?.meta.public, o?.meta.destinationsList], ['n1', 3, undefined, undefined], 'origin from the topic, no addressing or public flag')
  t.equal((await r.store.objects.history({ orgId: 'o', objectType: 'telemetry', objectId: 't1' })).length, 1, 'one instance')
  t.same(r.sent.filter(([, m]) => m.kind === 'state').length, 2, 'both offers answered "stored"')
  t.same(r.sync.counters.refused, { 'owned-type': 2, 'foreign-origin': 1 })
})

t.test('withdraw: the sender\'s own edge object is removed and confirmed; nobody else\'s is', async (t) => {
  t.testdir()
  const r = await rig(t)
  await r.put('cloud-name', { destinationType: 'edge' })
  const offer = (id: string, inst: number): Record<string, unknown> => ({ kind: 'offer', data: 'eA==', meta: { objectType: 'telemetry', objectID: id, instanceID: inst, dataID: inst, objectSize: 1 } })
  await r.say('n1', offer('t1', 3))
  await r.say('n2', offer('t2', 5))
  await r.say('n2', { kind: 'withdraw', objectType: 'telemetry', objectId: 't1', instanceId: 9 }) // not n2's
  await r.say('n2', { kind: 'withdraw', objectType: 'conf', objectId: 'cloud-name', instanceId: 9 }) // the cloud's
  await r.say('n2', { kind: 'withdraw', objectType: 'telemetry', objectId: 't2', instanceId: 4 }) // older than held
  t.ok(await r.store.objects.get({ orgId: 'o', objectType: 'telemetry', objectId: 't1' }), 'n1\'s object stays')
  t.ok(await r.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'cloud-name' }), 'the cloud\'s object stays')
  t.ok(await r.store.objects.get({ orgId: 'o', objectType: 'telemetry', objectId: 't2' }), 'a stale withdraw changes nothing')
  t.same(r.sync.counters.refused, { 'foreign-origin': 2, 'stale-instance': 1 })
  r.sent.length = 0
  await r.say('n1', { kind: 'withdraw', objectType: 'telemetry', objectId: 't1', instanceId: 4 })
  t.equal(await r.store.objects.get({ orgId: 'o', objectType: 'telemetry', objectId: 't1' }), undefined, 'removed')
  t.same(r.sent.map(([topic, m]) => `${topic} ${m.kind} ${m.kind === 'state' ? m.state : ''}`), ['sync/v1/o/edge/n1/down state withdrawn'])
  await r.say('n1', { kind: 'withdraw', objectType: 'telemetry', objectId: 't1', instanceId: 4 })
  t.equal(r.sent.length, 2, 'a repeated withdraw is confirmed again (the edge missed the answer)')
})

t.test('malformed messages are dropped and counted; heartbeats touch only the sender', async (t) => {
  t.testdir()
  const r = await rig(t)
  await r.sync.onMessage('sync/v1/o/edge/n1/up', Buffer.from('{not json'))
  await r.sync.onMessage('sync/v1/o/edge/n1/up', Buffer.from(JSON.stringify({ v: 1, kind: 'ack' })))
  await r.sync.onMessage('not/a/topic', Buffer.from('{}'))
  t.equal(r.sync.counters.dropped, 3)
  await r.say('n1', { kind: 'heartbeat', errors: 0, status: { ems: { version: 4 } } })
  await r.sync.chunks.onFetch('x', 'o', { v: 1, kind: 'fetch', objectType: 'conf', objectId: 'none', instanceId: 1, offset: 0, length: 1 }) // no crash
  const n1 = await r.store.nodes.get({ orgId: 'o', destinationType: 'edge', destinationId: 'n1' })
  t.same(n1?.status, { ems: { version: 4 } }, 'the plugin status is stored for the sender')
})
