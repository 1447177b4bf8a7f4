/**
 * The ESS registers again, with growing waits, until the CSS answers (a register published while
 * no CSS was subscribed is lost for good), stops once answered, and registers again when the CSS
 * asks for it. A fake connection records what the ESS publishes; the store is the memory one.
 */
import path from 'node:path'
import t, { type Test } from 'tap'
import { decodeUp, encode } from '../../../src/common/protocol/messages.js'
import { EdgeSync } from '../../../src/ess/sync.js'
import { createMemoryStore } from '../../../src/storage/index.js'
import { captureLogger } from '../../helpers/capture-log.js'

function edge (t: Test): { sync: EdgeSync, kinds: () => string[] } {
  const sent: Buffer[] = []
  const sync = new EdgeSync(createMemoryStore({ historyRetention: 2 }), { orgId: 'o', destinationType: 'edge', destinationId: 'e1' }, {
    transferDir: path.join(t.testdirName, 'transfers'), window: 4, timeoutMs: 5000, maxInline: 1024, chunkSize: 4096, registerRetryMs: 40
  }, captureLogger())
  sync.conn = { connected: true, publish: async (_topic, payload) => { sent.push(payload) }, close: async () => {} }
  t.teardown(() => { sync.close() })
  return { sync, kinds: () => sent.map((p) => decodeUp(p).kind) }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

t.test('an unanswered register is sent again with growing waits, and never after the answer', async (t) => {
  t.testdir()
  const { sync, kinds } = edge(t)
  await sync.register()
  t.same(kinds(), ['register'])
  await sleep(40 * 1.25 + 80 * 1.25 + 30) // first wait 30-50 ms, second 60-100 ms
  t.same(kinds(), ['register', 'register', 'register'], 'registered again twice, the second wait longer')
  await sync.onMessage('x', encode({ v: 1, kind: 'registered', resent: 0 }))
  const after = kinds().length
  await sleep(400)
  t.equal(kinds().length, after, 'nothing more once the CSS answered')
})

t.test('a disconnected ESS does not retry (its next connect registers)', async (t) => {
  t.testdir()
  const { sync, kinds } = edge(t)
  await sync.register()
  if (sync.conn !== undefined) sync.conn = { ...sync.conn, connected: false }
  await sleep(150)
  t.same(kinds(), ['register'])
})

t.test('the CSS\'s reregister request is answered with a register within its window', async (t) => {
  t.testdir()
  const { sync, kinds } = edge(t)
  await sync.onMessage('x', encode({ v: 1, kind: 'reregister', withinMs: 50 }))
  await sleep(120)
  t.same(kinds().slice(0, 1), ['register'])
})
