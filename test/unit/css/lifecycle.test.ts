/**
 * Object lifecycle on mock time: expiration deletes at the deadline (not before), activation fires
 * at its time, tombstones are removed after the grace period, deadlines survive a restart (start()
 * rebuilds them from the store), and a failing action is retried a minute later.
 */
import { mock } from 'node:test'
import t from 'tap'
import type { ObjectKey, ObjectMetadata } from '../../../src/common/model.js'
import { Lifecycle } from '../../../src/css/lifecycle.js'
import { createMemoryStore, type Store } from '../../../src/storage/index.js'
import { captureLogger } from '../../helpers/capture-log.js'

const T0 = Date.parse('2026-01-01T00:00:00Z')
const iso = (ms: number): string => new Date(T0 + ms).toISOString()

t.beforeEach(() => { mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 }) })
t.afterEach(() => { mock.timers.reset() })

async function put (store: Store, id: string, meta: Partial<ObjectMetadata>): Promise<void> {
  await store.objects.put({ orgId: 'o', objectType: 'conf', objectId: id }, () => ({
    meta: { objectID: id, objectType: 'conf', destinationOrgID: 'o', instanceID: 0, dataID: 0, objectSize: 0, ...meta },
    status: 'ready'
  }))
}

/** Lets the timer callback and the actions it awaits run. */
async function advance (ms: number): Promise<void> {
  mock.timers.tick(ms)
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => { queueMicrotask(resolve) })
}

function rig (store: Store, failFirst = false): { lc: Lifecycle, done: string[] } {
  const done: string[] = []
  let failed = !failFirst
  const act = (what: string) => async (k: ObjectKey) => {
    if (!failed) { failed = true; throw new Error('store down') }
    done.push(`${what} ${k.objectId} at ${(Date.now() - T0) / 1000}s`)
    if (what === 'delete') await put(store, k.objectId, { deleted: true, lastUpdate: iso(Date.now() - T0) })
    if (what === 'activate') await put(store, k.objectId, { inactive: false })
    if (what === 'remove') await store.objects.remove(k)
  }
  const lc = new Lifecycle(store, { delete: act('delete'), activate: act('activate'), remove: act('remove') },
    { deletedGraceMs: 100_000 }, captureLogger())
  return { lc, done }
}

t.test('expiration, then the tombstone removed after the grace period', async (t) => {
  const store = createMemoryStore({ historyRetention: 2 })
  await put(store, 'a', { expiration: iso(10_000) })
  const { lc, done } = rig(store)
  t.teardown(() => { lc.close() })
  await lc.start()
  await advance(9_999)
  t.same(done, [], 'not a millisecond early')
  await advance(1)
  t.same(done, ['delete a at 10s'])
  const after = await store.objects.get({ orgId: 'o', objectType: 'conf', objectId: 'a' })
  if (after !== undefined) lc.consider(after)
  await advance(100_000)
  t.same(done, ['delete a at 10s', 'remove a at 110s'])
})

t.test('activation at its time; objects without deadlines schedule nothing', async (t) => {
  const store = createMemoryStore({ historyRetention: 2 })
  await put(store, 'b', { inactive: true, activationTime: iso(5_000) })
  await put(store, 'plain', {})
  const { lc, done } = rig(store)
  t.teardown(() => { lc.close() })
  await lc.start()
  await advance(5_000)
  t.same(done, ['activate b at 5s'])
  await advance(10_000_000)
  t.same(done, ['activate b at 5s'], 'nothing else ever fires')
})

t.test('a deadline already past at start fires at once (a restart missed it)', async (t) => {
  const store = createMemoryStore({ historyRetention: 2 })
  await put(store, 'c', { expiration: iso(-60_000) })
  const { lc, done } = rig(store)
  t.teardown(() => { lc.close() })
  await lc.start()
  await advance(0)
  t.same(done, ['delete c at 0s'])
})

t.test('a failing action is retried a minute later', async (t) => {
  const store = createMemoryStore({ historyRetention: 2 })
  await put(store, 'd', { expiration: iso(1_000) })
  const { lc, done } = rig(store, true)
  t.teardown(() => { lc.close() })
  await lc.start()
  await advance(1_000)
  t.same(done, [], 'the first attempt failed')
  await advance(59_999)
  t.same(done, [])
  await advance(1)
  t.same(done, ['delete d at 61s'])
})

t.test('a deadline beyond setTimeout\'s range re-arms instead of firing early', async (t) => {
  const store = createMemoryStore({ historyRetention: 2 })
  const far = 40 * 24 * 3600 * 1000 // 40 days: more than 2^31-1 ms
  await put(store, 'e', { expiration: iso(far) })
  const { lc, done } = rig(store)
  t.teardown(() => { lc.close() })
  await lc.start()
  await advance(2 ** 31 - 1)
  t.same(done, [], 'the first timer ran out before the deadline: nothing done')
  await advance(far - (2 ** 31 - 1))
  t.same(done, [`delete e at ${far / 1000}s`])
})
