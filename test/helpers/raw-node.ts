/**
 * A hostile enrolled node: a plain MQTT client (mqtt.js, MQTT 3.1.1) logged in with a node's real
 * credentials, speaking the protocol by hand on its own topics, as an attacker's script would.
 */
import net from 'node:net'
import mqtt from 'mqtt'

export interface RawNode {
  client: mqtt.MqttClient
  /** Every message received on the node's down topics, decoded when JSON. */
  seen: Array<{ topic: string, kind?: string, body: Record<string, unknown> | undefined, bytes: number, head: string }>
  /** Sends one up message (a JSON object, or raw bytes) with QoS 1 on the node's own up topic. */
  up: (msg: Record<string, unknown> | Buffer) => Promise<void>
  close: () => Promise<void>
}

export interface RawNodeOptions {
  url: string
  org: string
  type: string
  id: string
  secret: string
  clientId?: string
  /** Source address of the TCP connection (any 127.x.y.z works on loopback). */
  localAddress?: string
}

export async function connectRawNode (o: RawNodeOptions): Promise<RawNode> {
  const username = `${o.org}/${o.type}/${o.id}`
  const u = new URL(o.url)
  const opts = { username, password: o.secret, clientId: o.clientId ?? username, protocolVersion: 4 as const, reconnectPeriod: 0, clean: true, connectTimeout: 5000 }
  const client = new mqtt.MqttClient(() => net.connect({ host: u.hostname, port: Number(u.port), ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }) }), opts)
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('error', reject)
    client.once('close', () => { reject(new Error('closed before CONNACK')) })
  })
  const seen: RawNode['seen'] = []
  client.on('message', (topic, payload) => {
    let body: Record<string, unknown> | undefined
    try { body = JSON.parse(payload.toString('utf8')) as Record<string, unknown> } catch { body = undefined }
    seen.push({ topic, kind: typeof body?.kind === 'string' ? body.kind : (payload[0] === 0 ? 'chunk' : undefined), body, bytes: payload.length, head: payload.subarray(0, 600).toString('latin1') })
  })
  const root = `sync/v1/${o.org}`
  await client.subscribeAsync({ [`${root}/${o.type}/${o.id}/down`]: { qos: 1 }, [`${root}/${o.type}/_all/down`]: { qos: 1 }, [`${root}/_all/_all/down`]: { qos: 1 } })
  return {
    client,
    seen,
    up: async (msg) => { await client.publishAsync(`${root}/${o.type}/${o.id}/up`, Buffer.isBuffer(msg) ? msg : JSON.stringify(msg), { qos: 1 }) },
    close: async () => { await client.endAsync(true) }
  }
}

/** Resolves with the CONNACK return code of a login attempt (0 = accepted). */
export async function connackCode (o: RawNodeOptions): Promise<number> {
  try {
    const n = await connectRawNode(o)
    await n.close()
    return 0
  } catch (err) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'number' ? code : -1
  }
}
