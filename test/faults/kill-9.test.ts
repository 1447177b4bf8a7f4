/**
 * Seeded fault injection with real processes: a CSS (its embedded broker) and three ESS processes,
 * an edge app per ESS that polls, reads and consumes (marking the instance it read), a stream of
 * versions of one object and a chunked large object, and `kill -9` of the CSS and of ESS processes
 * at points the seed picks, each restarted. Then: every edge holds the newest version and the
 * large object byte for byte, every destination is consumed, no app ever saw a version go
 * backwards, no acknowledged write was lost. Replay with FAULT_SEED=<seed in the test name>.
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import t, { type Test } from 'tap'
import { mosquittoAclText, mosquittoPasswordLine } from '../../src/security/index.js'
import { requireBinary } from '../helpers/binaries.js'
import { startMosquitto, type Mosquitto } from '../../harness/mosquitto.js'
import { ADMIN, APP, basic, waitFor } from '../helpers/cluster.js'
import { freePort } from '../../harness/ports.js'
import { killProcess, startProcess, type Proc } from '../helpers/processes.js'

const SEED = Number(process.env.FAULT_SEED ?? 7)
const VERSIONS = 24

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const admin = { authorization: basic(ADMIN) }
const app = { authorization: basic(APP) }

async function runShape (t: Test, shape: 'embedded' | 'mosquitto', root: string, mosqBin?: string): Promise<void> {
  const random = rng(SEED)
  const restPort = await freePort()
  const mqttPort = await freePort()
  const CSS = `http://127.0.0.1:${restPort}`
  // On Mosquitto the broker is a process of its own, killed too; nodes use its edge listener.
  const cssLine = mosquittoPasswordLine('css', 'css-secret')
  let mosq: Mosquitto | undefined = mosqBin === undefined ? undefined : await startMosquitto(mosqBin, cssLine, mosquittoAclText('css', []))
  t.teardown(async () => { await mosq?.stop() })
  const external: Record<string, string> = mosq === undefined ? {} : { BROKER_MODE: 'external', BROKER_ADDRESS: mosq.url, BROKER_USERNAME: 'css', BROKER_PASSWORD: 'css-secret' }
  const cssEnv = {
    ...external,
    PERSISTENCE_ROOT_PATH: path.join(root, 'css'),
    LISTENING_PORT: String(restPort),
    MQTT_LISTENING_PORT: String(mqttPort),
    ADMIN_KEY: ADMIN.key,
    ADMIN_SECRET: ADMIN.secret,
    MAX_INLINE_DATA_SIZE: '4096',
    CHUNK_SIZE: '65536'
  }
  let css: Proc = await startProcess(t, 'css', cssEnv)
  const ids = ['k1', 'k2', 'k3']
  const secrets = new Map<string, string>()
  for (const id of ids) {
    const r = await fetch(`${CSS}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: admin })
    secrets.set(id, ((await r.json()) as { secret: string }).secret)
  }
  const keys = ids.map((id) => ({ orgId: 'org1', destinationType: 'edge', destinationId: id }))
  const brokerAuth = (): [string, string] => [[cssLine, ...ids.map((id) => mosquittoPasswordLine(`org1/edge/${id}`, secrets.get(id) ?? ''))].join('\n'), mosquittoAclText('css', keys)]
  if (mosq !== undefined) await mosq.setAuth(...brokerAuth())
  const edgeBroker = (): string => mosq?.edgeUrl ?? `mqtt://127.0.0.1:${mqttPort}`
  const essPorts = new Map<string, number>()
  for (const id of ids) essPorts.set(id, await freePort())
  const startEdge = async (id: string): Promise<Proc> => await startProcess(t, 'ess', {
    ORG_ID: 'org1',
    DESTINATION_TYPE: 'edge',
    DESTINATION_ID: id,
    NODE_SECRET: secrets.get(id) ?? '',
    BROKER_ADDRESS: edgeBroker(),
    PERSISTENCE_ROOT_PATH: path.join(root, 'ess'),
    LISTENING_PORT: String(essPorts.get(id)),
    ADMIN_KEY: APP.key,
    ADMIN_SECRET: APP.secret
  })
  const edges = new Map<string, Proc>()
  for (const id of ids) edges.set(id, await startEdge(id))

  // Each edge app: poll, read what is listed, remember every version it saw, consume what it read.
  const seen = new Map<string, number[]>(ids.map((id) => [id, []]))
  const large = new Map<string, string>()
  const running = { stop: false }
  async function appLoop (id: string): Promise<void> {
    const base = `http://127.0.0.1:${essPorts.get(id) ?? 0}/api/v1/objects/conf`
    while (!running.stop) {
      try {
        const list = await fetch(base, { headers: app })
        const items = list.ok ? await list.json() as Array<{ objectID: string }> : []
        for (const o of items) {
          const d = await fetch(`${base}/${o.objectID}/data`, { headers: app })
          if (!d.ok) continue
          const bytes = Buffer.from(await d.arrayBuffer())
          if (o.objectID === 'stream') seen.get(id)?.push(Number(bytes.toString().slice(1)))
          else large.set(id, createHash('sha256').update(bytes).digest('hex'))
          await fetch(`${base}/${o.objectID}/consumed`, { method: 'PUT', headers: { ...app, 'if-match': d.headers.get('etag') ?? '' } })
        }
      } catch { /* the ESS is down: try again */ }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const loops = ids.map(async (id) => { await appLoop(id) })
  t.teardown(async () => { running.stop = true; await Promise.all(loops) })
  const killBroker = async (): Promise<void> => {
    if (mosq === undefined || mosqBin === undefined) return
    const ports = { port: mosq.port, edgePort: Number(new URL(mosq.edgeUrl).port) }
    await mosq.stop('SIGKILL')
    mosq = await startMosquitto(mosqBin, ...brokerAuth(), ports)
  }

  async function put (id: string, data: Buffer): Promise<number | undefined> {
    try {
      const r = await fetch(`${CSS}/api/v1/objects/org1/conf/${id}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: data.toString('base64') }) })
      return r.status === 204 ? Number(r.headers.get('x-sync-instance-id')) : undefined
    } catch {
      return undefined // the CSS is down: not acknowledged
    }
  }

  const bigData = Buffer.alloc(1_500_000)
  for (let i = 0; i < bigData.length; i++) bigData[i] = (i * 7 + SEED) & 0xff
  const bigHash = createHash('sha256').update(bigData).digest('hex')
  const cssKillAt = new Set([3 + Math.floor(random() * 8), 14 + Math.floor(random() * 8)])
  const essKills = new Map<number, string>([[2 + Math.floor(random() * 20), ids[Math.floor(random() * ids.length)] ?? 'k1']])
  const brokerKillAt = mosq === undefined ? undefined : 4 + Math.floor(random() * 16)
  t.comment(`${shape}: CSS killed after versions ${[...cssKillAt].join(', ')}; ESS killed: ${JSON.stringify([...essKills])}${brokerKillAt === undefined ? '' : `; Mosquitto killed after v${brokerKillAt}`}`)
  const acked: number[] = []
  if (await put('large', bigData) === undefined) throw new Error('the large object was not stored')
  for (let v = 1; v <= VERSIONS; v++) {
    if (await put('stream', Buffer.from(`v${v}`)) !== undefined) acked.push(v)
    const victim = essKills.get(v)
    if (victim !== undefined) {
      await killProcess(edges.get(victim) as Proc)
      edges.set(victim, await startEdge(victim))
    }
    if (cssKillAt.has(v)) {
      await killProcess(css)
      css = await startProcess(t, 'css', cssEnv)
    }
    if (v === brokerKillAt) await killBroker()
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 60)))
  }
  const last = Math.max(...acked)
  t.ok(acked.length >= VERSIONS - cssKillAt.size, `${acked.length} of ${VERSIONS} versions acknowledged`)
  const current = await (await fetch(`${CSS}/api/v1/objects/org1/conf/stream/data`, { headers: admin })).text()
  t.ok(Number(current.slice(1)) >= last, `no acknowledged write lost: the CSS holds ${current}, last acknowledged v${last}`)
  const newest = Number(current.slice(1))
  const streamEnd = Date.now()
  await waitFor('every edge app saw the newest version and the large object', async () =>
    ids.every((id) => seen.get(id)?.at(-1) === newest && large.get(id) === bigHash) ? true : undefined, 60_000)
  for (const id of ids) {
    const versions = seen.get(id) ?? []
    const backwards = versions.filter((v, i) => i > 0 && v < (versions[i - 1] ?? 0))
    t.same(backwards, [], `${id}: no version went backwards (${versions.length} reads)`)
  }
  for (const obj of ['stream', 'large']) {
    await waitFor(`every destination consumed ${obj}`, async () => {
      const d = await (await fetch(`${CSS}/api/v1/objects/org1/conf/${obj}/destinations`, { headers: admin })).json() as Array<{ status: string }>
      return d.length === ids.length && d.every((x) => x.status === 'consumed') ? true : undefined
    }, 60_000)
  }
  t.comment(`converged ${Date.now() - streamEnd} ms after the last write; reads per edge: ${ids.map((id) => seen.get(id)?.length ?? 0).join(', ')}`)
  t.pass('every edge holds the newest version and the large object byte for byte; every destination consumed')
}

t.test(`embedded broker: kill -9 of the CSS (and so its broker) and of ESS processes during a stream and a chunked transfer (seed ${SEED})`, async (t) => {
  await runShape(t, 'embedded', t.testdir())
})

t.test(`Mosquitto: kill -9 of the CSS, of ESS processes and of the broker (seed ${SEED})`, async (t) => {
  const bin = requireBinary(t, 'mosquitto', 'apt-get install mosquitto')
  if (bin !== undefined) await runShape(t, 'mosquitto', t.testdir(), bin)
})
