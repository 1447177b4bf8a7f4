/**
 * A worker process of the fan-out, raw and storm benchmarks: many lightweight edges over real MQTT,
 * each with its own credentials. In sync mode each speaks the real protocol (register with what it
 * holds, ack received then consumed as its app would); in raw mode each subscribes to the same
 * topics and answers any message with one QoS 1 publish on its up topic (no sync logic). Driven by
 * IPC: start (paced connects), drop (every connection closed), reconnect (all at once), stop.
 */
import { silentLogger } from '../src/common/log.js'
import { decodeDown, encode, type Holding } from '../src/common/protocol/messages.js'
import { essSubscriptions, upTopic } from '../src/common/protocol/topics.js'
import { connectMqtt, type MqttConnection } from '../src/transport/index.js'

export type WorkerCommand =
  | { cmd: 'start', mode: 'sync' | 'raw', url: string, nodes: Array<{ id: string, secret: string }>, org: string, type: string }
  | { cmd: 'drop' }
  | { cmd: 'reconnect' }
  | { cmd: 'stop' }

let conns: MqttConnection[] = []
const beats = new Map<MqttConnection, NodeJS.Timeout>()
const HEARTBEAT_MS = 30_000
let setup: Extract<WorkerCommand, { cmd: 'start' }> | undefined
const held = new Map<string, Map<string, Holding>>()

async function startEdge (m: Extract<WorkerCommand, { cmd: 'start' }>, n: { id: string, secret: string }, patient = false): Promise<void> {
  const node = { orgId: m.org, destinationType: m.type, destinationId: n.id }
  const holdings = held.get(n.id) ?? new Map<string, Holding>()
  held.set(n.id, holdings)
  // The handlers below run only after connectMqtt resolved, so `ref.conn` is set by then.
  const ref: { conn?: MqttConnection } = {}
  const send = (payload: Buffer): void => { ref.conn?.publish(upTopic(node), payload).catch(() => {}) }
  ref.conn = await connectMqtt({
    url: m.url,
    clientId: `${m.org}/${m.type}/${n.id}`,
    username: `${m.org}/${m.type}/${n.id}`,
    password: n.secret,
    subscriptions: essSubscriptions(node),
    onMessage: async (_topic, payload) => {
      if (m.mode === 'raw') { send(Buffer.from(n.id)); return }
      const msg = decodeDown(payload)
      if (msg.kind !== 'update') return
      const base = { v: 1 as const, kind: 'ack' as const, objectType: msg.meta.objectType, objectId: msg.meta.objectID, instanceId: msg.meta.instanceID }
      send(encode({ ...base, state: 'received' }))
      send(encode({ ...base, state: 'consumed' }))
      holdings.set(`${base.objectType}/${base.objectId}`, { objectType: base.objectType, objectId: base.objectId, instanceId: base.instanceId, state: 'consumed' })
    },
    onConnect: async () => {
      if (m.mode === 'sync') send(encode({ v: 1, kind: 'register', properties: {}, codeVersion: 'bench', holdings: [...holdings.values()] }))
    },
    log: silentLogger,
    // In a storm an edge keeps retrying as a real ESS does, instead of giving up after 15 s.
    ...(patient ? { firstConnectWaitMs: 300_000 } : {})
  })
  conns.push(ref.conn)
  // Heartbeats as a real ESS sends them (HeartbeatIntervalSeconds default), spread over the period.
  if (m.mode === 'sync') {
    const conn = ref.conn
    const beat = setInterval(() => { if (conn.connected) send(encode({ v: 1, kind: 'heartbeat', errors: 0 })) }, HEARTBEAT_MS + Math.random() * 1000)
    beat.unref()
    beats.set(conn, beat)
  }
}

const reply = (m: Record<string, unknown>): void => { process.send?.(m) }

process.on('message', (raw: unknown) => {
  const m = raw as WorkerCommand
  void (async () => {
    if (m.cmd === 'stop') {
      await Promise.all(conns.map(async (c) => { await c.close() }))
      process.exit(0)
    } else if (m.cmd === 'start') {
      setup = m
      // Paced connects: a burst of thousands of TCP handshakes at once only measures the kernel.
      for (let i = 0; i < m.nodes.length; i += 50) await Promise.all(m.nodes.slice(i, i + 50).map(async (n) => { await startEdge(m, n) }))
      reply({ cmd: 'started', count: conns.length })
    } else if (m.cmd === 'drop') {
      const old = conns
      conns = []
      await Promise.all(old.map(async (c) => { clearInterval(beats.get(c)); beats.delete(c); await c.close() }))
      reply({ cmd: 'dropped' })
    } else if (setup !== undefined) {
      // The storm: every edge of this worker at once, no pacing.
      const s = setup
      await Promise.all(s.nodes.map(async (n) => { await startEdge(s, n, true) }))
      reply({ cmd: 'reconnected', count: conns.length })
    }
  })().catch((err: unknown) => { reply({ cmd: 'error', message: String(err) }); process.exit(1) })
})
