/**
 * The receiver's timers on mock time: a fetch left unanswered is asked again after the timeout,
 * each further timeout doubles the wait (up to 8x), an answer resets it, and `busy` holds every
 * request until the sender's retry time.
 */
import { createHash } from 'node:crypto'
import { mock } from 'node:test'
import t from 'tap'
import { encodeChunk } from '../../../src/common/protocol/messages.js'
import { fakeEdge, type FakeEdge } from '../../helpers/fake-edge.js'

t.beforeEach(() => { mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'], now: 1_000_000 }) })
t.afterEach(() => { mock.timers.reset() })

const data = Buffer.alloc(64, 3)
const meta = {
  objectID: 'big',
  objectType: 'conf',
  destinationOrgID: 'o',
  instanceID: 1,
  dataID: 1,
  objectSize: data.length,
  dataHash: createHash('sha256').update(data).digest('hex')
}
const fetchedAt = (e: FakeEdge): number[] => e.sent.flatMap((m) => m.kind === 'fetch' ? [m.offset] : [])

async function tick (ms: number): Promise<void> {
  mock.timers.tick(ms)
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => { queueMicrotask(resolve) })
}

t.test('unanswered fetches are asked again with doubling waits', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { maxInline: 8, timeoutMs: 1000 })
  await e.say({ kind: 'update', meta, chunkSize: 16 })
  t.same(fetchedAt(e), [0, 16], 'the window: two fetches')
  await tick(1000)
  t.same(fetchedAt(e), [0, 16], 'not at the timeout itself')
  await tick(1000)
  t.same(fetchedAt(e), [0, 16, 0, 16], 'asked again once the timeout passed')
  await tick(2000)
  t.equal(fetchedAt(e).length, 4, 'the second wait is twice as long')
  await tick(1000)
  t.equal(fetchedAt(e).length, 6)
  for (let i = 0; i < 10; i++) await tick(1000)
  const count = fetchedAt(e).length
  await tick(8000)
  t.ok(fetchedAt(e).length - count <= 2, 'waits stop growing at 8x the timeout')
})

t.test('an answer resets the wait; busy holds requests until the retry time', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { maxInline: 8, timeoutMs: 1000 })
  await e.say({ kind: 'update', meta, chunkSize: 16 })
  const ids = { objectType: 'conf', objectId: 'big', instanceId: 1 }
  const chunk = data.subarray(0, 16)
  const sha256 = createHash('sha256').update(chunk).digest('hex')
  await e.sync.onMessage('down', encodeChunk({ v: 1, kind: 'chunk', ...ids, offset: 0, sha256, data: chunk }))
  t.same(fetchedAt(e), [0, 16, 32], 'the window moved on')
  await e.say({ kind: 'busy', ...ids, retryAfterMs: 5000 })
  const before = fetchedAt(e).length
  await tick(4000)
  t.equal(fetchedAt(e).length, before, 'nothing asked while the sender is busy')
  await tick(2000)
  t.same(fetchedAt(e).slice(before), [16, 32], 'then everything not held, from the first missing chunk')
})
