/**
 * Group commit: a burst of delivery updates and heartbeats becomes one bulk write of each; nobody's
 * promise resolves before that write, and a failed write rejects every caller it carried.
 */
import t from 'tap'
import type { DeliveryUpdate } from '../../../src/common/model.js'
import { StatusWriter } from '../../../src/css/status-writer.js'
import { createMemoryStore, type Store } from '../../../src/storage/index.js'
import { captureLogger } from '../../helpers/capture-log.js'

function counted (fail = false): { store: Store, writes: number[], touches: number[] } {
  const store = createMemoryStore({ historyRetention: 2 })
  const writes: number[] = []
  const touches: number[] = []
  const upsert = store.deliveries.upsertMany.bind(store.deliveries)
  store.deliveries.upsertMany = async (u) => {
    writes.push(u.length)
    if (fail) throw new Error('disk full') // the fault a real disk gives; the writer must pass it on
    await upsert(u)
  }
  const touch = store.nodes.touchMany.bind(store.nodes)
  store.nodes.touchMany = async (u) => { touches.push(u.length); await touch(u) }
  return { store, writes, touches }
}

const update = (i: number): DeliveryUpdate => ({
  orgId: 'o', objectType: 'conf', objectId: `c${i}`, destinationType: 'edge', destinationId: 'e1', instanceId: 1, status: 'delivered'
})
const node = (id: string): { orgId: string, destinationType: string, destinationId: string } =>
  ({ orgId: 'o', destinationType: 'edge', destinationId: id })

t.test('a burst is one write; every caller resolves after it, with the record durable', async (t) => {
  const { store, writes, touches } = counted()
  const w = new StatusWriter(store, captureLogger())
  let seen = 0
  await Promise.all([
    ...Array.from({ length: 50 }, async (_, i) => {
      await w.deliveries([update(i)])
      const d = await store.deliveries.get({ orgId: 'o', objectType: 'conf', objectId: `c${i}` }, node('e1'))
      if (d?.status === 'delivered') seen++
    }),
    w.touch(node('e1'), true), w.touch(node('e2'), true), w.touch(node('e1'), true, { ems: { v: 3 } })
  ])
  t.same(writes, [50], 'one bulk write of 50 delivery records')
  t.same(touches, [2], 'one bulk touch, one per node')
  t.equal(seen, 50, 'each caller found its record written when its promise resolved')
})

t.test('a heartbeat without status keeps the status of one queued with it', async (t) => {
  const { store } = counted()
  const w = new StatusWriter(store, captureLogger())
  await store.nodes.upsert({ ...node('e1'), properties: {}, protocol: 'mqtt', online: true, registeredAt: '', lastHeartbeat: '' })
  await Promise.all([w.touch(node('e1'), true, { ems: { v: 3 } }), w.touch(node('e1'), true)])
  t.same((await store.nodes.get(node('e1')))?.status, { ems: { v: 3 } })
})

t.test('a failed write rejects every caller it carried; the next batch starts clean', async (t) => {
  const bad = counted(true)
  const w = new StatusWriter(bad.store, captureLogger())
  const results = await Promise.allSettled([w.deliveries([update(1)]), w.deliveries([update(2)])])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'])
  t.same(bad.writes, [2])
  await t.rejects(w.deliveries([update(3)]))
  t.same(bad.writes, [2, 1], 'the failed records are not carried into the next write')
})

t.test('drain flushes at once', async (t) => {
  const { store, writes } = counted()
  const w = new StatusWriter(store, captureLogger())
  const p = w.deliveries([update(1)])
  await w.drain()
  t.same(writes, [1])
  await p
})
