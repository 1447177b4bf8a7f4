/** The CSS end of the HTTP link without a network: mailboxes, acks, overflow, sessions, presence. */
import t from 'tap'
import { silentLogger } from '../../../src/common/log.js'
import { decodeFrames, encodeFrames } from '../../../src/common/protocol/frames.js'
import { HttpBridge, withHttpBridge } from '../../../src/transport/http-bridge.js'
import type { CloudTransport } from '../../../src/transport/types.js'

const TOPICS: Record<string, string[]> = { a: ['down/a', 'down/all'], b: ['down/b', 'down/all'] }

function bridge (maxBytes = 1000, idleMs = 60_000): HttpBridge {
  const b = new HttpBridge({
    topicsOf: (u) => TOPICS[u],
    upTopicOf: (u) => (u in TOPICS ? `up/${u}` : undefined),
    maxBytes,
    idleMs,
    log: silentLogger
  })
  t.teardown(() => { b.close() })
  return b
}
const never = new AbortController().signal

t.test('frames round-trip, and a truncated body is refused whole', async (t) => {
  const frames = [{ seq: 1, topic: 'x/ü', payload: Buffer.from('one') }, { seq: 4294967295, topic: '', payload: Buffer.alloc(0) }]
  const body = encodeFrames(frames)
  t.same(decodeFrames(body).map((f) => [f.seq, f.topic, f.payload.toString()]), [[1, 'x/ü', 'one'], [4294967295, '', '']])
  for (const cut of [1, 7, body.length - 1]) t.throws(() => decodeFrames(body.subarray(0, cut)), { code: 'SYNC_ERR_PROTOCOL' })
})

t.test('a node receives only its topics, in order, until it acknowledges them', async (t) => {
  const b = bridge()
  t.ok((await b.poll('a', 's-a', 0, 0, never)).fresh)
  t.notOk((await b.poll('a', 's-a', 0, 0, never)).fresh, 'fresh only once')
  b.deliver('down/a', Buffer.from('1'))
  b.deliver('down/b', Buffer.from('not for a'))
  b.deliver('down/all', Buffer.from('2'))
  const got = await b.poll('a', 's-a', 0, 0, never)
  t.same(got.frames.map((f) => f.payload.toString()), ['1', '2'])
  const again = await b.poll('a', 's-a', got.frames[0]?.seq ?? 0, 0, never)
  t.same(again.frames.map((f) => f.payload.toString()), ['2'], 'the unacknowledged one again')
})

t.test('a waiting poll answers as soon as something arrives', async (t) => {
  const b = bridge()
  await b.poll('a', 's-a', 0, 0, never)
  const started = Date.now()
  const waiting = b.poll('a', 's-a', 0, 30_000, never)
  setTimeout(() => { b.deliver('down/a', Buffer.from('now')) }, 20)
  t.same((await waiting).frames.map((f) => f.payload.toString()), ['now'])
  t.ok(Date.now() - started < 5000)
  const ac = new AbortController()
  const gone = b.poll('a', 's-a', 99, 30_000, ac.signal)
  ac.abort()
  t.same((await gone).frames, [], 'a client that went away ends its wait')
})

t.test('a mailbox past its limit is emptied and the session marked fresh (the node resyncs)', async (t) => {
  const b = bridge(10)
  await b.poll('a', 's-a', 0, 0, never)
  b.deliver('down/a', Buffer.alloc(6))
  b.deliver('down/a', Buffer.alloc(6))
  const got = await b.poll('a', 's-a', 0, 0, never)
  t.ok(got.fresh)
  t.same(got.frames, [])
})

t.test('a new session replaces the old one; up messages carry the node\'s own topic', async (t) => {
  const b = bridge()
  const ups: Array<[string, string]> = []
  b.onMessage(async (topic, payload) => { ups.push([topic, payload.toString()]) })
  await b.poll('a', 's-1', 0, 0, never)
  b.deliver('down/a', Buffer.from('old'))
  t.ok((await b.poll('a', 's-2', 0, 0, never)).fresh, 'a restarted edge starts afresh')
  await b.up('a', Buffer.from('hi'))
  await b.up('stranger', Buffer.from('dropped'))
  t.same(ups, [['up/a', 'hi']])
})

t.test('presence: online while either channel has the node; revoking cuts both', async (t) => {
  const b = bridge(1000, 1)
  let mqttPresence: (u: string, online: boolean) => void = () => {}
  const dropped: string[] = []
  const inner: CloudTransport = {
    urls: [],
    publish: async () => {},
    onMessage: () => {},
    onPresence: (h) => { mqttPresence = h },
    disconnect: (u) => { dropped.push(u) },
    connected: () => true,
    close: async () => {}
  }
  const both = withHttpBridge(inner, b)
  const seen: Array<[string, boolean]> = []
  both.onPresence((u, online) => { seen.push([u, online]) })
  await b.poll('a', 's-a', 0, 0, never)
  mqttPresence('a', true)
  b.end('a', 's-a')
  t.same(seen.at(-1), ['a', true], 'leaving HTTP while on MQTT keeps it online')
  mqttPresence('a', false)
  t.same(seen.at(-1), ['a', false])
  await b.poll('b', 's-b', 0, 0, never)
  both.disconnect('b')
  t.same(dropped, ['b'])
  t.notOk(b.online('b'))
  await b.poll('a', 's-a2', 0, 0, never)
  await new Promise((resolve) => setTimeout(resolve, 1200))
  t.notOk(b.online('a'), 'an idle session is closed by the sweep')
  t.same(seen.at(-1), ['a', false])
})
