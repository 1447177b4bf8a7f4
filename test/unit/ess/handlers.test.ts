/**
 * The ESS protocol core without a broker: EdgeSync over the memory store and a fake link that
 * records every publish. Every CSS message kind, duplicates, reordering, forged instructions,
 * chunked transfers with damage and resume, in milliseconds.
 */
import { memorySettings } from '../../../src/storage/index.js'
import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import type { ObjectMetadata } from '../../../src/common/model.js'
import { encodeChunk, type UpMessage } from '../../../src/common/protocol/messages.js'
import { deleteStatement } from '../../../src/common/protocol/statements.js'
import { TrustStore } from '../../../src/ess/trust.js'
import { readBlob } from '../../../src/storage/index.js'
import { OrgSigningKeys } from '../../../src/security/index.js'
import { fakeEdge, type FakeEdge } from '../../helpers/fake-edge.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

function meta (id: string, instanceID: number, data?: Buffer, more: Partial<ObjectMetadata> = {}): ObjectMetadata {
  return {
    objectID: id,
    objectType: 'conf',
    destinationOrgID: 'o',
    instanceID,
    dataID: data === undefined ? 0 : instanceID,
    objectSize: data?.length ?? 0,
    originType: 'cloud',
    originID: 'cloud',
    ...(data === undefined ? {} : { dataHash: sha(data) }),
    ...more
  }
}

const acks = (e: FakeEdge): string[] => e.sent.flatMap((m) => m.kind === 'ack'
  ? [`${m.objectId}#${m.instanceId} ${m.state}${m.message === undefined ? '' : ` (${m.message})`}`]
  : [])

async function update (e: FakeEdge, m: ObjectMetadata, data?: Buffer): Promise<void> {
  await e.say({ kind: 'update', meta: m, ...(data === undefined ? {} : { data: data.toString('base64') }) })
}

async function signed (t: Test): Promise<{ e: FakeEdge, keys: OrgSigningKeys }> {
  const keys = new OrgSigningKeys(memorySettings())
  const trust = await TrustStore.open(t.testdirName, await keys.publicKey('o'))
  return { e: fakeEdge(t, { trust }), keys }
}

t.test('update: inline data is stored, acknowledged, shown to apps and handed to the plugin', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  const data = Buffer.from('{"a":1}')
  await update(e, meta('a', 1, data), data)
  const o = await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' })
  t.equal(o?.status, 'completelyReceived')
  t.same(await readBlob(e.store.blobs, o?.dataRef ?? ''), data)
  t.same(acks(e), ['a#1 received'])
  t.same(e.notices, ['update conf/a#1'])
  t.same(e.offered, ['conf/a#1'])
})

t.test('update: a duplicate or an older instance is never stored; the CSS hears what is held', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  const v2 = Buffer.from('two')
  await update(e, meta('a', 2, v2), v2)
  await update(e, meta('a', 2, v2), v2)
  await update(e, meta('a', 1, Buffer.from('one')), Buffer.from('one'))
  const o = await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' })
  t.equal(o?.meta.instanceID, 2)
  t.same(await readBlob(e.store.blobs, o?.dataRef ?? ''), v2)
  t.same(acks(e), ['a#2 received', 'a#2 received', 'a#2 received'])
  t.same(e.offered, ['conf/a#2'], 'the plugin saw it once')
})

t.test('update: data that does not match the hash in the metadata is refused', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  await update(e, meta('a', 1, Buffer.from('good')), Buffer.from('evil'))
  t.equal(await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' }), undefined)
  t.same(acks(e), ['a#1 error (rejected: data hash mismatch)'])
  t.same(e.offered, [])
})

t.test('update: a metadata-only change keeps the data held', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  const data = Buffer.from('payload')
  await update(e, meta('a', 1, data), data)
  await update(e, meta('a', 2, data, { dataID: 1, description: 'renamed' }))
  const o = await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' })
  t.equal(o?.meta.description, 'renamed')
  t.same(await readBlob(e.store.blobs, o?.dataRef ?? ''), data)
})

t.test('update: signed objects verify; forged or tampered ones are refused', async (t) => {
  t.testdir()
  const { e, keys } = await signed(t)
  const good = meta('a', 1)
  await e.say({ kind: 'update', meta: good, sig: await keys.sign('o', good) })
  const forger = new OrgSigningKeys(memorySettings())
  await e.say({ kind: 'update', meta: meta('b', 1), sig: await forger.sign('o', meta('b', 1)) })
  await e.say({ kind: 'update', meta: meta('c', 1) })
  const tampered = meta('a', 2)
  const sig = await keys.sign('o', tampered)
  await e.say({ kind: 'update', meta: { ...tampered, description: 'changed after signing' }, sig })
  t.same(acks(e), ['a#1 received', 'b#1 error (rejected: bad signature)', 'c#1 error (rejected: bad signature)',
    'a#2 error (rejected: bad signature)'])
  t.same(e.offered, ['conf/a#1'])
})

t.test('delete: obeyed only when signed; acknowledged either way', async (t) => {
  t.testdir()
  const { e, keys } = await signed(t)
  const m = meta('a', 1)
  await e.say({ kind: 'update', meta: m, sig: await keys.sign('o', m) })
  const ids = { objectType: 'conf', objectId: 'a', instanceId: 2 }
  await e.say({ kind: 'delete', ...ids })
  t.equal((await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' }))?.meta.deleted, undefined,
    'an unsigned delete changes nothing')
  await e.say({ kind: 'delete', ...ids, sig: await keys.sign('o', deleteStatement('o', ids)) })
  const o = await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' })
  t.equal(o?.status, 'objdeleted')
  t.equal(o?.meta.deleted, true)
  t.same(acks(e), ['a#1 received', 'a#2 error (rejected: bad signature on delete)', 'a#2 deleted'])
  t.same(e.notices, ['update conf/a#1', 'delete conf/a#2'])
})

t.test('delete: an old delete (after a newer update) leaves the newer instance', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  await update(e, meta('a', 3))
  await e.say({ kind: 'delete', objectType: 'conf', objectId: 'a', instanceId: 2 })
  const o = await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' })
  t.equal(o?.meta.instanceID, 3)
  t.equal(o?.status, 'completelyReceived')
  t.same(acks(e), ['a#3 received', 'a#2 deleted'], 'acknowledged so the CSS stops resending')
})

t.test('trust: a key announced under a trusted signature is learned; others are not', async (t) => {
  t.testdir()
  const { e, keys } = await signed(t)
  const rotated = await keys.rotate('o')
  const forger = new OrgSigningKeys(memorySettings())
  const fake = await forger.rotate('o')
  await e.say({ kind: 'trust', publicKey: fake.publicKey, sig: fake.trustSig })
  const m = meta('a', 1)
  await e.say({ kind: 'update', meta: m, sig: await keys.sign('o', m) })
  t.same(acks(e), ['a#1 error (rejected: bad signature)'], 'the new key is not trusted before its announcement')
  await e.say({ kind: 'trust', publicKey: rotated.publicKey, sig: rotated.trustSig })
  await e.say({ kind: 'update', meta: m, sig: await keys.sign('o', m) })
  t.same(acks(e).slice(1), ['a#1 received'], 'trusted after the signed announcement')
})

t.test('register: reports what is held, refused versions as errors; the answer releases plugins', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  await update(e, meta('a', 1))
  await update(e, meta('b', 4))
  await e.store.objects.setStatus({ orgId: 'o', objectType: 'conf', objectId: 'a' }, 'objconsumed', 1)
  e.refusals.set('conf/b#4', 'bad config')
  e.sent.length = 0
  await e.sync.register()
  const reg = e.sent[0] as Extract<UpMessage, { kind: 'register' }>
  t.same(reg.holdings.map((h) => `${h.objectId}#${h.instanceId} ${h.state}${h.message === undefined ? '' : ` ${h.message}`}`).sort(),
    ['a#1 consumed', 'b#4 error bad config'])
  await e.say({ kind: 'registered', resent: 0 })
  t.same(e.gate, ['pause', 'resume'])
})

t.test('malformed messages are dropped and counted, never thrown', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  for (const bad of ['', 'null', '{"v":1,"kind":"update"}', '{"v":2,"kind":"registered","resent":0}', '\u0000\u0001']) {
    await e.sync.onMessage('down', Buffer.from(bad))
  }
  t.equal(e.sync.dropped, 5)
  t.same(e.sent, [])
})

/** Answers every fetch the edge sent (and not yet answered) with the right chunk, or with `damage`. */
async function serve (e: FakeEdge, data: Buffer, answered: Set<number>, damage?: (offset: number) => boolean): Promise<number> {
  let n = 0
  for (const m of [...e.sent]) {
    if (m.kind !== 'fetch' || answered.has(e.sent.indexOf(m))) continue
    answered.add(e.sent.indexOf(m))
    let chunk = data.subarray(m.offset, m.offset + m.length)
    const hash = sha(chunk)
    if (damage?.(m.offset) === true) chunk = Buffer.from(chunk.map((b) => b ^ 1))
    const ids = { objectType: m.objectType, objectId: m.objectId, instanceId: m.instanceId }
    await e.sync.onMessage('down', encodeChunk({ v: 1, kind: 'chunk', ...ids, offset: m.offset, sha256: hash, data: chunk }))
    n++
  }
  return n
}

t.test('chunked: a large object is pulled within the window, verified, stored once', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { maxInline: 8, chunkSize: 16 })
  const data = Buffer.from('x'.repeat(100) + 'end')
  await e.say({ kind: 'update', meta: meta('big', 1, data), chunkSize: 16 })
  const fetches = (): number => e.sent.filter((m) => m.kind === 'fetch').length
  t.equal(fetches(), 2, 'no more fetches in flight than the window (2)')
  const answered = new Set<number>()
  let damaged = false
  for (let round = 0; round < 20 && acks(e).length === 0; round++) {
    await serve(e, data, answered, (offset) => { if (offset === 32 && !damaged) { damaged = true; return true } return false })
    await new Promise(setImmediate)
  }
  t.same(acks(e), ['big#1 received'])
  const o = await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'big' })
  t.same(await readBlob(e.store.blobs, o?.dataRef ?? ''), data)
  t.equal(e.sync.transfers.stats.corruptChunks, 1, 'the damaged chunk was detected')
  t.equal(e.sent.filter((m) => m.kind === 'fetch' && m.offset === 32).length, 2, 'and asked for again')
  t.same(e.offered, ['conf/big#1'])
})

t.test('chunked: busy pauses, gone drops the transfer, a delete cancels it', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { maxInline: 8 })
  const data = Buffer.alloc(64, 7)
  const ids = { objectType: 'conf', objectId: 'big', instanceId: 1 }
  await e.say({ kind: 'update', meta: meta('big', 1, data), chunkSize: 16 })
  await e.say({ kind: 'busy', ...ids, retryAfterMs: 60_000 })
  await e.say({ kind: 'gone', ...ids })
  const before = e.sent.length
  await serve(e, data, new Set())
  t.equal(await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'big' }), undefined,
    'chunks of a dropped transfer are ignored')
  t.equal(e.sent.length, before, 'and not answered')
  await e.say({ kind: 'update', meta: meta('big', 2, data), chunkSize: 16 })
  await e.say({ kind: 'delete', ...ids, instanceId: 2 })
  await serve(e, data, new Set())
  t.equal(await e.store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'big' }), undefined)
  t.same(acks(e), ['big#2 deleted'])
})

t.test('chunked: a transfer resumes from its checkpoint after a restart', async (t) => {
  t.testdir()
  const data = Buffer.from('0123456789abcdef'.repeat(6))
  const first = fakeEdge(t, { maxInline: 8 })
  await first.say({ kind: 'update', meta: meta('big', 1, data), chunkSize: 16 })
  await serve(first, data, new Set())
  await first.sync.transfers.close() // checkpoints what it has (2 chunks)
  const second = fakeEdge(t, { maxInline: 8 })
  await second.say({ kind: 'update', meta: meta('big', 1, data), chunkSize: 16 })
  const offsets = second.sent.filter((m) => m.kind === 'fetch').map((m) => m.kind === 'fetch' ? m.offset : -1)
  t.same(offsets, [32, 48], 'the second edge asks only for what the first did not hold')
  t.equal(second.sync.transfers.stats.resumedBytes, 32)
})

t.test('edge to cloud: an offer, the CSS\'s fetch served from the store, state marks it delivered', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { maxInline: 4 })
  const data = Buffer.from('edge data larger than inline')
  const blob = await e.store.blobs.write([data])
  const key = { orgId: 'o', objectType: 'report', objectId: 'r1' }
  const obj = await e.store.objects.put(key, () => ({
    meta: meta('r1', 1, data, { objectType: 'report', originType: 'edge', originID: 'e1' }),
    status: 'ready',
    dataRef: blob.ref
  }))
  await e.sync.offer(obj)
  const offer = e.sent.find((m) => m.kind === 'offer')
  t.equal(offer?.kind === 'offer' ? offer.data : 'x', undefined, 'too large to go inline')
  const ids = { objectType: 'report', objectId: 'r1', instanceId: obj.meta.instanceID }
  await e.say({ kind: 'fetch', ...ids, offset: 16, length: 16 })
  // Served after the handler returns (a fetch changes nothing durable, so it is acked first).
  for (let i = 0; i < 200 && !e.sent.some((m) => m.kind === 'chunk'); i++) await new Promise(setImmediate)
  const chunk = e.sent.find((m) => m.kind === 'chunk')
  t.same(chunk?.kind === 'chunk' ? chunk.data : undefined, data.subarray(16, 32))
  await e.say({ kind: 'state', ...ids, state: 'stored' })
  const d = await e.store.deliveries.get(key, { orgId: 'o', destinationType: 'cloud', destinationId: 'css' })
  t.equal(d?.status, 'delivered')
  e.sent.length = 0
  await e.sync.reoffer()
  t.same(e.sent, [], 'a confirmed object is not offered again')
})

t.test('edge to cloud: consumed by the cloud shows as consumedByDest; a confirmed withdraw drops the tombstone', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  const key = { orgId: 'o', objectType: 'report', objectId: 'r2' }
  const obj = await e.store.objects.put(key, () => ({
    meta: meta('r2', 1, undefined, { objectType: 'report', originType: 'edge', originID: 'e1' }),
    status: 'ready'
  }))
  const ids = { objectType: 'report', objectId: 'r2', instanceId: obj.meta.instanceID }
  await e.say({ kind: 'state', ...ids, state: 'consumed' })
  t.equal((await e.store.objects.get(key))?.status, 'consumedByDest')
  const cloud = await e.store.objects.put({ ...key, objectId: 'c9' }, () => ({ meta: meta('c9', 1), status: 'completelyReceived' }))
  await e.say({ kind: 'state', objectType: 'report', objectId: 'c9', instanceId: cloud.meta.instanceID, state: 'consumed' })
  t.equal((await e.store.objects.get({ ...key, objectId: 'c9' }))?.status, 'completelyReceived', 'a cloud object is not the edge\'s to mark')
  const tomb = await e.store.objects.put(key, (c) => ({ meta: { ...(c?.meta ?? obj.meta), deleted: true }, status: 'objdeleted' }))
  e.sync.withdraw(tomb)
  t.same(e.sent.at(-1), { v: 1, kind: 'withdraw', objectType: 'report', objectId: 'r2', instanceId: tomb.meta.instanceID })
  e.sent.length = 0
  await e.sync.reoffer()
  t.same(e.sent.map((m) => m.kind), ['withdraw'], 'an unconfirmed withdraw is sent again at the next connect')
  await e.say({ kind: 'state', ...ids, instanceId: tomb.meta.instanceID, state: 'withdrawn' })
  t.equal(await e.store.objects.get(key), undefined, 'the tombstone is gone once the CSS confirmed')
})
