/**
 * `CommunicationProtocol auto`: an edge whose network blocks the broker port syncs over HTTP, moves
 * back to MQTT when the port opens, and falls back again when it closes; nothing published in
 * between is lost, and each object reaches the edge app once. The "network" is a TCP gate in
 * front of the real broker: closed, a connection is refused, as a firewall's reject does.
 */
import net from 'node:net'
import t from 'tap'
import { freePort } from '../../harness/ports.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'

const root = t.testdir()
const css = await startCss(t, `${root}/css`)
const brokerPort = Number(new URL(css.mqttUrls[0] ?? '').port)

/** A TCP gate to the broker: open forwards, closed refuses and cuts what went through. */
class Gate {
  readonly port: number
  #server: net.Server | undefined
  readonly #sockets = new Set<net.Socket>()
  constructor (port: number) { this.port = port }
  async open (): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(brokerPort, '127.0.0.1')
      for (const s of [client, upstream]) this.#sockets.add(s)
      client.pipe(upstream).pipe(client)
      const end = (): void => { client.destroy(); upstream.destroy() }
      client.on('error', end); upstream.on('error', end); client.on('close', end); upstream.on('close', end)
    })
    this.#server = server
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve))
  }

  async close (): Promise<void> {
    const server = this.#server
    this.#server = undefined
    for (const s of this.#sockets) s.destroy()
    this.#sockets.clear()
    if (server !== undefined) await new Promise((resolve) => server.close(resolve))
  }
}
const gate = new Gate(await freePort())
t.teardown(async () => { await gate.close() })

const node = { org: 'org1', type: 'edge', id: 'a1' }
const ess = await startEss(t, css, `${root}/ess`, node, undefined, {
  CommunicationProtocol: 'auto',
  BrokerAddress: `mqtt://127.0.0.1:${gate.port}`,
  HttpCssAddress: css.restUrl,
  MqttFallbackSeconds: 1
})

// What the edge app sees: update notices per object, over server-sent events.
const seen = new Map<string, number>()
const events = new AbortController()
t.teardown(() => { events.abort() })
const res = await fetch(`${ess.restUrl}/api/v1/events`, { headers: { authorization: basic(APP) }, signal: events.signal })
void (async () => {
  let buf = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += Buffer.from(chunk).toString()
    let i: number
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const m = /^event: update\ndata: (.*)$/m.exec(buf.slice(0, i))
      buf = buf.slice(i + 2)
      if (m?.[1] !== undefined) {
        const id = (JSON.parse(m[1]) as { objectID: string }).objectID
        seen.set(id, (seen.get(id) ?? 0) + 1)
      }
    }
  }
})().catch(() => {})

async function channel (): Promise<string | undefined> {
  const r = await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: { authorization: basic(ADMIN) } })
  const list = await r.json() as Array<{ destinationID: string, communication: string }>
  return list.find((d) => d.destinationID === node.id)?.communication
}

async function put (id: string): Promise<void> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}`, {
    method: 'PUT',
    headers: { authorization: basic(ADMIN), 'content-type': 'application/json' },
    body: JSON.stringify({ meta: { destinationType: 'edge', destinationID: node.id }, data: Buffer.from(id).toString('base64') })
  })
  if (r.status !== 204) throw new Error(`put ${id}: ${r.status}`)
}

async function arrived (id: string): Promise<string> {
  return await waitFor(`${id} on the edge`, async () => {
    const r = await fetch(`${ess.restUrl}/api/v1/objects/conf/${id}/data`, { headers: { authorization: basic(APP) } })
    return r.status === 200 ? await r.text() : undefined
  }, 20_000)
}

async function consumedAt (id: string): Promise<void> {
  const r = await fetch(`${ess.restUrl}/api/v1/objects/conf/${id}/consumed`, { method: 'PUT', headers: { authorization: basic(APP) } })
  if (r.status !== 204) throw new Error(`consumed ${id}: ${r.status}`)
  await waitFor(`${id} consumed in the CSS`, async () => {
    const d = await (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}/destinations`, { headers: { authorization: basic(ADMIN) } })).json() as Array<{ status: string }>
    return d[0]?.status === 'consumed' ? true : undefined
  }, 20_000)
}

t.test('auto - the broker port is closed: the edge registers and syncs over HTTP', async (t) => {
  t.equal(await waitFor('registered over http', async () => (await channel()) === 'http' ? 'http' : undefined, 20_000), 'http')
  await put('while-blocked')
  t.equal(await arrived('while-blocked'), 'while-blocked')
  await consumedAt('while-blocked')
  t.pass('its consumed mark reached the CSS over HTTP')
})

t.test('auto - the port opens: the edge moves to MQTT, and what was published meanwhile arrives', async (t) => {
  await put('before-switch')
  await gate.open()
  t.equal(await waitFor('back on mqtt', async () => (await channel()) === 'mqtt' ? 'mqtt' : undefined, 20_000), 'mqtt')
  await put('after-switch')
  t.equal(await arrived('before-switch'), 'before-switch')
  t.equal(await arrived('after-switch'), 'after-switch')
  await consumedAt('after-switch')
})

t.test('auto - the port closes again: back to HTTP, still nothing lost', async (t) => {
  await gate.close()
  await put('blocked-again')
  t.equal(await waitFor('http again', async () => (await channel()) === 'http' ? 'http' : undefined, 20_000), 'http')
  t.equal(await arrived('blocked-again'), 'blocked-again')
  await consumedAt('blocked-again')
  for (const id of ['while-blocked', 'before-switch', 'after-switch', 'blocked-again']) {
    t.equal(seen.get(id), 1, `the edge app saw ${id} once`)
  }
})
