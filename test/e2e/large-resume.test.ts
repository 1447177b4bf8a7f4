/**
 * Large objects across failures, with real processes: an ESS SIGKILLed halfway resumes from its
 * last checkpoint; the CSS (and with it the embedded broker) SIGKILLed mid-transfer resumes; a
 * chunk damaged on the wire (a TCP proxy flips a byte) is detected and fetched again. Every edge
 * ends byte-exact. LARGE_TEST_MB sets the size (default 200).
 */
import { createHash } from 'node:crypto'
import net from 'node:net'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { basic, APP, channelEnv, waitFor } from '../helpers/cluster.js'
import { expectedBytes, generateBytes } from '../helpers/bytes.js'
import { freePort } from '../../harness/ports.js'
import { killProcess, startProcess, type Proc } from '../helpers/processes.js'

const SIZE = Number(process.env.LARGE_TEST_MB ?? 200) * 1024 * 1024
const SIZE2 = Math.round(SIZE / 2) + 777
const root = t.testdir()
const top = t
const admin = { authorization: 'Basic ' + Buffer.from('root:root-secret').toString('base64') }
const restPort = await freePort()
const mqttPort = await freePort()
const CSS = `http://127.0.0.1:${restPort}`
const cssEnv = { PERSISTENCE_ROOT_PATH: `${root}/css`, LISTENING_PORT: String(restPort), MQTT_LISTENING_PORT: String(mqttPort), ADMIN_KEY: 'root', ADMIN_SECRET: 'root-secret', CHUNK_SIZE: '262144' }
let css: Proc = await startProcess(t, 'css', cssEnv)

const kill = killProcess

// A proxy in front of the broker (or, over the HTTP link, the CSS's REST port) for n3 that flips
// one byte of object data once, on the way down.
const overHttp = process.env.SYNC_TEST_PROTOCOL === 'http'
const proxyPort = await freePort()
const marker = expectedBytes(3 * 1024 * 1024 + 1000, 3 * 1024 * 1024 + 1015) // 16 bytes of the data, past 3 MiB
let flipped = 0
const proxy = net.createServer((client) => {
  const upstream = net.connect(overHttp ? restPort : mqttPort, '127.0.0.1')
  let tail = Buffer.alloc(0)
  let seenDown = 0
  upstream.on('data', (d: Buffer) => {
    seenDown += d.length
    if (flipped === 0 && seenDown > 2 * 1024 * 1024) {
      const i = Buffer.concat([tail, d]).indexOf(marker)
      const at = i - tail.length + 8
      if (i >= 0 && at >= 0 && at < d.length) { d[at] = (d[at] ?? 0) ^ 0xff; flipped++ }
    }
    tail = Buffer.from(d.subarray(Math.max(0, d.length - 15)))
    client.write(d)
  })
  client.on('data', (d) => upstream.write(d))
  const end = (): void => { client.destroy(); upstream.destroy() }
  client.on('error', end); upstream.on('error', end); client.on('close', end); upstream.on('close', end)
})
await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve))
t.teardown(() => { proxy.close() })

interface Edge { id: string, port: number, env: Record<string, string>, proc: Proc }
const edges = new Map<string, Edge>()
for (const id of ['n1', 'n2', 'n3']) {
  const r = await fetch(`${CSS}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: admin })
  const secret = ((await r.json()) as { secret: string }).secret
  const port = await freePort()
  const env = {
    NODE_TYPE: 'ESS',
    ORG_ID: 'org1',
    DESTINATION_TYPE: 'edge',
    DESTINATION_ID: id,
    NODE_SECRET: secret,
    BROKER_ADDRESS: `mqtt://127.0.0.1:${id === 'n3' ? proxyPort : mqttPort}`,
    PERSISTENCE_ROOT_PATH: `${root}/ess`,
    LISTENING_PORT: String(port),
    ADMIN_KEY: APP.key,
    ADMIN_SECRET: APP.secret,
    TRANSFER_TIMEOUT_SECONDS: '2',
    ...channelEnv(`http://127.0.0.1:${id === 'n3' ? proxyPort : restPort}`)
  }
  edges.set(id, { id, port, env, proc: await startProcess(t, 'ess', env) })
}
const edge = (id: string): Edge => edges.get(id) as Edge

interface Dest { destinationID: string, status: string, bytesReceived?: number, instanceID: number }
async function destinations (id: string): Promise<Dest[]> {
  const r = await fetch(`${CSS}/api/v1/objects/org1/firmware/${id}/destinations`, { headers: admin })
  return r.ok ? await r.json() as Dest[] : []
}
async function health (e: Edge): Promise<{ bytesReceived: number, corruptChunks: number, resumedBytes: number }> {
  const r = await fetch(`http://127.0.0.1:${e.port}/api/v1/health`, { headers: { authorization: basic(APP) } })
  return ((await r.json()) as { transfers: { bytesReceived: number, corruptChunks: number, resumedBytes: number } }).transfers
}
async function hashOf (stream: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256')
  for await (const c of stream) h.update(c)
  return h.digest('hex')
}
async function publish (id: string, size: number): Promise<void> {
  const meta = { objectID: id, objectType: 'firmware', destinationType: 'edge' }
  const m = await fetch(`${CSS}/api/v1/objects/org1/firmware/${id}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta }) })
  if (m.status !== 204) throw new Error(`meta put: ${m.status}`)
  const d = await fetch(`${CSS}/api/v1/objects/org1/firmware/${id}/data`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/octet-stream' }, body: Readable.from(generateBytes(size, 1024 * 1024)) as unknown as RequestInit['body'], duplex: 'half' } as RequestInit)
  if (d.status !== 204) throw new Error(`data put: ${d.status} ${await d.text()}`)
}
async function checkAll (t: Test, id: string, size: number): Promise<void> {
  await waitFor(`${id} delivered everywhere`, async () => {
    const list = await destinations(id)
    return list.length === 3 && list.every((d) => d.status === 'delivered') ? true : undefined
  }, 240_000)
  const want = await hashOf(generateBytes(size, 1024 * 1024))
  for (const e of edges.values()) {
    const r = await fetch(`http://127.0.0.1:${e.port}/api/v1/objects/firmware/${id}/data`, { headers: { authorization: basic(APP) } })
    t.equal(await hashOf(r.body as unknown as AsyncIterable<Uint8Array>), want, `${e.id} holds ${id} byte-exact`)
  }
}

t.test(`large objects - ${SIZE / 1048576} MiB to 3 edges: an ESS SIGKILLed halfway resumes; a damaged chunk is repaired`, async (t) => {
  await waitFor('3 nodes', async () => ((await (await fetch(`${CSS}/api/v1/destinations/org1`, { headers: admin })).json()) as unknown[]).length === 3 ? true : undefined)
  const started = Date.now()
  await publish('big', SIZE)
  await waitFor('n1 halfway', async () => ((await destinations('big')).find((d) => d.destinationID === 'n1')?.bytesReceived ?? 0) >= SIZE / 2 ? true : undefined, 240_000)
  const n1 = edge('n1')
  await kill(n1.proc)
  n1.proc = await startProcess(top, 'ess', n1.env)
  await checkAll(t, 'big', SIZE)
  const h1 = await health(n1)
  t.ok(h1.resumedBytes >= SIZE / 4, `n1 resumed from byte ${h1.resumedBytes}`)
  t.ok(h1.bytesReceived < SIZE, `after its restart n1 fetched ${h1.bytesReceived} bytes, fewer than the whole ${SIZE}`)
  t.equal(flipped, 1, 'the proxy damaged one chunk on the wire')
  t.ok((await health(edge('n3'))).corruptChunks >= 1, 'n3 detected the damaged chunk (and fetched it again)')
  t.comment(`${SIZE / 1048576} MiB to 3 edges with one ESS restart: ${((Date.now() - started) / 1000).toFixed(1)} s`)
})

t.test('large objects - the CSS and its embedded broker SIGKILLed mid-transfer: edges resume', async (t) => {
  await publish('big2', SIZE2)
  const n2 = edge('n2')
  await waitFor('n2 at a third', async () => ((await destinations('big2')).find((d) => d.destinationID === 'n2')?.bytesReceived ?? 0) >= SIZE2 / 3 ? true : undefined, 240_000)
  await kill(css)
  const atKill = (await health(n2)).bytesReceived
  css = await startProcess(top, 'css', cssEnv)
  await checkAll(t, 'big2', SIZE2)
  const after = (await health(n2)).bytesReceived
  t.ok(after - atKill < SIZE2, `after the CSS restart n2 fetched ${after - atKill} more bytes, fewer than the whole ${SIZE2}`)
})
