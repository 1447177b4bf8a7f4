/**
 * The chunk server answers each fetch with exactly the bytes asked for, `gone` for anything that is
 * not the current instance of the asker's org, `busy` past its cap of concurrent transfers, and
 * serves a repeated fetch once while the first is in flight.
 */
import t from 'tap'
import { decodeDown, type DownMessage } from '../../../src/common/protocol/messages.js'
import { createMemoryStore } from '../../../src/storage/index.js'
import { ChunkServer } from '../../../src/transfer/chunk-server.js'
import { captureLogger } from '../../helpers/capture-log.js'

async function rig (maxConcurrent = 2): Promise<{ server: ChunkServer, replies: Array<[string, DownMessage]>, data: Buffer, instance: number }> {
  const store = createMemoryStore({ historyRetention: 2 })
  const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i))
  const blob = await store.blobs.write([data])
  const key = { orgId: 'o', objectType: 'conf', objectId: 'big' }
  const o = await store.objects.put(key, () => ({
    meta: { objectID: 'big', objectType: 'conf', destinationOrgID: 'o', instanceID: 0, dataID: 1, objectSize: 100 },
    status: 'ready',
    dataRef: blob.ref
  }))
  const replies: Array<[string, DownMessage]> = []
  const server = new ChunkServer(store, {
    maxConcurrent,
    idleMs: 1000,
    reply: async (peer, payload) => { replies.push([peer, decodeDown(payload)]) }
  }, captureLogger())
  return { server, replies, data, instance: o.meta.instanceID }
}

const fetch = (instanceId: number, offset: number, length = 30): { v: 1, kind: 'fetch', objectType: string, objectId: string, instanceId: number, offset: number, length: number } =>
  ({ v: 1, kind: 'fetch', objectType: 'conf', objectId: 'big', instanceId, offset, length })

t.test('serves the range asked for; the last chunk is short', async (t) => {
  const r = await rig()
  await r.server.onFetch('n1', 'o', fetch(r.instance, 0))
  await r.server.onFetch('n1', 'o', fetch(r.instance, 90))
  const chunks = r.replies.map(([, m]) => m.kind === 'chunk' ? m.data : undefined)
  t.same(chunks, [r.data.subarray(0, 30), r.data.subarray(90, 100)])
  t.equal(r.server.bytesServed, 40)
})

t.test('gone for another instance or another org; nothing past the end', async (t) => {
  const r = await rig()
  await r.server.onFetch('n1', 'o', fetch(r.instance + 1, 0))
  await r.server.onFetch('n1', 'other-org', fetch(r.instance, 0))
  await r.server.onFetch('n1', 'o', fetch(r.instance, 100))
  t.same(r.replies.map(([, m]) => m.kind), ['gone', 'gone'], 'and silence past the end of the data')
})

t.test('busy past the cap, a slot freed when a transfer finishes or idles', async (t) => {
  const r = await rig(1)
  await r.server.onFetch('n1', 'o', fetch(r.instance, 0))
  await r.server.onFetch('n2', 'o', fetch(r.instance, 0))
  t.same(r.replies.map(([p, m]) => `${p} ${m.kind}`), ['n1 chunk', 'n2 busy'])
  const busy = r.replies[1]?.[1]
  t.ok(busy?.kind === 'busy' && busy.retryAfterMs >= 500 && busy.retryAfterMs < 2000, 'with a jittered retry time')
  await r.server.onFetch('n1', 'o', fetch(r.instance, 30))
  t.equal(r.replies.at(-1)?.[1].kind, 'chunk', 'the admitted transfer goes on')
  r.server.finished('n1', { objectType: 'conf', objectId: 'big' })
  await r.server.onFetch('n2', 'o', fetch(r.instance, 0))
  t.same(r.replies.at(-1)?.[0], 'n2')
  t.equal(r.replies.at(-1)?.[1].kind, 'chunk', 'served once n1 finished')
})

t.test('a repeated fetch in flight is served once', async (t) => {
  const r = await rig()
  await Promise.all([r.server.onFetch('n1', 'o', fetch(r.instance, 0)), r.server.onFetch('n1', 'o', fetch(r.instance, 0))])
  t.equal(r.replies.length, 1)
})
