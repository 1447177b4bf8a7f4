/**
 * A worker process of the fan-out benchmark: many lightweight edges over real MQTT, each speaking
 * the real protocol (register, ack received, ack consumed as its app would), or, in raw mode, plain
 * subscribers that answer each message with one QoS 1 publish. Driven by IPC messages.
 */
import { silentLogger } from '../src/common/log.js'
import { decodeDown, encode } from '../src/common/protocol/messages.js'
import { essSubscriptions, upTopic } from '../src/common/protocol/topics.js'
import { connectMqtt, type MqttConnection } from '../src/transport/index.js'

interface Start { cmd: 'start', mode: 'sync' | 'raw', url: string, nodes: Array<{ id: string, secret: string }>, org: string, type: string }

const conns: MqttConnection[] = []

async function startEdge (m: Start, n: { id: string, secret: string }): Promise<void> {
  const node = { orgId: m.org, destinationType: m.type, destinationId: n.id }
  // The handlers below run only after connectMqtt resolved, so `ref.conn` is set by then.
  const ref: { conn?: MqttConnection } = {}
  const ack = (msg: Parameters<typeof encode>[0]): void => { ref.conn?.publish(upTopic(node), encode(msg)).catch(() => {}) }
  ref.conn = await connectMqtt({
    url: m.url,
    clientId: m.mode === 'raw' ? `raw-${n.id}` : `ess:${m.org}:${m.type}:${n.id}`,
    ...(m.mode === 'raw' ? {} : { username: `${m.org}/${m.type}/${n.id}`, password: n.secret }),
    subscriptions: m.mode === 'raw' ? ['raw/down'] : essSubscriptions(node),
    onMessage: async (_topic, payload) => {
      if (m.mode === 'raw') { ref.conn?.publish('raw/up', Buffer.from(n.id)).catch(() => {}); return }
      const msg = decodeDown(payload)
      if (msg.kind !== 'update') return
      const base = { v: 1 as const, kind: 'ack' as const, objectType: msg.meta.objectType, objectId: msg.meta.objectID, instanceId: msg.meta.instanceID }
      ack({ ...base, state: 'received' })
      ack({ ...base, state: 'consumed' })
    },
    onConnect: async () => {
      if (m.mode === 'sync') ack({ v: 1, kind: 'register', properties: {}, codeVersion: 'bench', holdings: [] })
    },
    log: silentLogger
  })
  conns.push(ref.conn)
}

process.on('message', (raw: unknown) => {
  const m = raw as Start | { cmd: 'stop' }
  if (m.cmd === 'stop') {
    void Promise.all(conns.map(async (c) => { await c.close() })).finally(() => process.exit(0))
    return
  }
  (async () => {
    // Paced connects: a burst of thousands of TCP handshakes at once only measures the kernel.
    for (let i = 0; i < m.nodes.length; i += 50) await Promise.all(m.nodes.slice(i, i + 50).map(async (n) => { await startEdge(m, n) }))
    process.send?.({ cmd: 'started', count: conns.length })
  })().catch((err: unknown) => { process.send?.({ cmd: 'error', message: String(err) }); process.exit(1) })
})
