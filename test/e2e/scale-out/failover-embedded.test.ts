/**
 * The embedded-cluster shape: two CSS processes, each with its own Aedes broker, joined through
 * Redis (messages, sessions, queued QoS 1 messages), on one store (FerretDB on PostgreSQL), behind
 * HAProxy for REST and MQTT; ten real ESS processes connect through HAProxy and spread over both.
 * Each edge message is handled by exactly one CSS (a webhook per arrival is called once). A stream
 * of 30 versions of one object and 20 other objects is written through HAProxy; the lease holder
 * is SIGKILLed in the middle. Its edges reconnect to the survivor and get what was queued for
 * them; every edge ends with the newest version of everything (data compared), every destination
 * consumed, no edge app ever saw the streamed object go backwards, and the lease moved within its
 * term plus one renewal.
 */
import { createServer } from 'node:http'
import path from 'node:path'
import t from 'tap'
import { forEachLimit } from '../../../src/common/concurrency.js'
import { startFerretDb } from '../../../harness/ferretdb.js'
import { startHaproxy } from '../../../harness/haproxy.js'
import { freePort } from '../../../harness/ports.js'
import { startRedis } from '../../../harness/redis.js'
import { requireBinary } from '../../helpers/binaries.js'
import { ADMIN, APP, basic, waitFor } from '../../helpers/cluster.js'
import { killProcess, startProcess, type Proc } from '../../helpers/processes.js'
import { checkLinkFollows } from '../../helpers/link-check.js'
import { checkAllConsumed, checkEdgesHoldAll, checkForwardOnly, watchStream } from '../../helpers/stream-check.js'

const redisBin = requireBinary(t, 'redis-server', 'apt-get install redis-server')
const haproxyBin = requireBinary(t, 'haproxy', 'apt-get install haproxy')
const ferretBin = requireBinary(t, 'ferretdb', 'run .ci/install-ferretdb.sh')
const pgBin = requireBinary(t, 'postgres', 'apt-get install postgresql')
const LEASE_SECONDS = 2
const STREAM = { versions: 30, others: 20 }
const EDGES = 10

interface Lease { leader: boolean, holder?: string }
interface Instance { id: string, alive: boolean, leader: boolean, connectedEdges: number | null }

if (redisBin !== undefined && haproxyBin !== undefined && ferretBin !== undefined && pgBin !== undefined) {
  const root = t.testdir()
  const db = await startFerretDb(ferretBin, { backend: 'postgresql' })
  t.teardown(() => db.stop())
  const redis = await startRedis(redisBin)
  t.teardown(() => redis.stop())
  const names = ['css-a', 'css-b']
  const ports = new Map<string, { rest: number, mqtt: number }>()
  for (const n of names) ports.set(n, { rest: await freePort(), mqtt: await freePort() })
  const procs = new Map<string, Proc>()
  for (const name of names) {
    procs.set(name, await startProcess(t, 'css', {
      PERSISTENCE_ROOT_PATH: path.join(root, name),
      LISTENING_PORT: String(ports.get(name)?.rest),
      MQTT_LISTENING_PORT: String(ports.get(name)?.mqtt),
      ADMIN_KEY: ADMIN.key,
      ADMIN_SECRET: ADMIN.secret,
      STORAGE_PROVIDER: 'mongo',
      MONGO_URI: db.uri,
      MONGO_DB_NAME: 'embedded',
      CLUSTER_REDIS_ADDRESS: redis.url,
      CSS_INSTANCE_ID: name,
      LEASE_SECONDS: String(LEASE_SECONDS)
    }))
  }
  const direct = (n: string): string => `http://127.0.0.1:${ports.get(n)?.rest ?? 0}`
  const lb = await startHaproxy(haproxyBin, [
    { name: 'rest', mode: 'http', servers: names.map((n) => `127.0.0.1:${ports.get(n)?.rest ?? 0}`) },
    { name: 'mqtt', mode: 'tcp', servers: names.map((n) => `127.0.0.1:${ports.get(n)?.mqtt ?? 0}`) }
  ])
  t.teardown(() => lb.stop())
  const REST = `http://127.0.0.1:${lb.ports.get('rest') ?? 0}`
  const MQTT = `mqtt://127.0.0.1:${lb.ports.get('mqtt') ?? 0}`
  const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
  const lease = async (url: string): Promise<Lease | undefined> => {
    try {
      return ((await (await fetch(`${url}/readyz`)).json()) as { lease: Lease }).lease
    } catch {
      return undefined
    }
  }
  const cluster = async (): Promise<Instance[]> =>
    ((await (await fetch(`${REST}/api/v1/cluster`, { headers: admin })).json()) as { instances: Instance[] }).instances

  const ids = Array.from({ length: EDGES }, (_, i) => `n${i}`)
  const ess = new Map<string, string>()
  // Three at a time: ten processes compiling through the test loader at once on two cores (and
  // the other scale-out file's beside them) would not be ready within the start timeout.
  await forEachLimit(ids, 3, async (id) => {
    const r = await fetch(`${REST}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
    const secret = ((await r.json()) as { secret: string }).secret
    const p = await startProcess(t, 'ess', {
      PERSISTENCE_ROOT_PATH: path.join(root, 'ess', id),
      LISTENING_PORT: '0',
      ORG_ID: 'org1',
      DESTINATION_TYPE: 'edge',
      DESTINATION_ID: id,
      NODE_SECRET: secret,
      BROKER_ADDRESS: MQTT,
      ADMIN_KEY: APP.key,
      ADMIN_SECRET: APP.secret
    })
    ess.set(id, /REST (\S+)/.exec(p.line)?.[1] ?? '')
  })

  t.test('embedded cluster - the edges spread over both brokers; one lease holder', async (t) => {
    const list = await waitFor('every edge connected', async () => {
      const l = await cluster()
      const sum = l.reduce((s, i) => s + (i.connectedEdges ?? 0), 0)
      return l.length === 2 && sum === EDGES ? l : undefined
    }, 60_000)
    t.ok(list.every((i) => (i.connectedEdges ?? 0) > 0), `edges per instance: ${list.map((i) => `${i.id} ${String(i.connectedEdges)}`).join(', ')}`)
    t.equal(list.filter((i) => i.leader).length, 1, 'exactly one leader')
  })

  t.test('embedded cluster - each edge message is handled by exactly one CSS', async (t) => {
    const calls: string[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => { body += d.toString() })
      req.on('end', () => {
        if (req.headers['x-sync-event'] === 'update') calls.push((JSON.parse(body) as { objectID: string }).objectID)
        res.writeHead(200).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { server.close() })
    const port = (server.address() as { port: number }).port
    t.equal((await fetch(`${REST}/api/v1/objects/org1/report`, { method: 'PUT', headers: admin, body: JSON.stringify({ action: 'register', url: `http://127.0.0.1:${port}/hook` }) })).status, 204)
    for (const id of ids) {
      const r = await fetch(`${ess.get(id) ?? ''}/api/v1/objects/report/r-${id}`, { method: 'PUT', headers: { authorization: basic(APP), 'content-type': 'application/json' }, body: JSON.stringify({ meta: {}, data: Buffer.from(`from ${id}`).toString('base64') }) })
      t.equal(r.status, 204, `${id} sends a report`)
    }
    await waitFor('a webhook call per report', async () => new Set(calls).size === EDGES ? true : undefined, 30_000)
    // A second handler would call the hook again within moments: give it the time.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    t.equal(calls.length, EDGES, `one call per report (${calls.length} calls for ${EDGES} reports)`)
    const stored = await (await fetch(`${REST}/api/v1/objects/org1/report`, { headers: admin })).json() as unknown[]
    t.equal(stored.length, EDGES, 'every report stored once')
  })

  t.test('embedded cluster - an edge on one instance\'s HTTP link gets what the other instance publishes', async (t) => {
    // w1 polls css-a only; css-b's publishes reach css-a's link through Redis.
    await checkLinkFollows(t, { polled: direct('css-a'), writer: direct('css-b'), root })
  })
  t.test('embedded cluster - a CSS dies mid-stream: lease moves, nothing lost, nothing goes backwards', async (t) => {
    const apps = watchStream(ess)
    // Written through HAProxy, as a client of the cluster would; a write that finds the victim
    // dead is retried, as such a client does (the REST call is idempotent).
    const put = async (type: string, id: string, data: string, description?: string): Promise<number> => {
      for (let i = 0; ; i++) {
        const r = await fetch(`${REST}/api/v1/objects/org1/${type}/${id}`, {
          method: 'PUT',
          headers: admin,
          body: JSON.stringify({ meta: { destinationType: 'edge', ...(description === undefined ? {} : { description }) }, data: Buffer.from(data).toString('base64') })
        }).catch(() => undefined)
        if ((r !== undefined && r.status < 500) || i >= 5) return r?.status ?? 0
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    const l0 = await Promise.all(names.map(async (n) => [n, await lease(direct(n))] as const))
    const victim = l0.find(([, l]) => l?.leader === true)?.[0] ?? 'css-a'
    const survivor = victim === 'css-a' ? 'css-b' : 'css-a'
    let killedAt = 0
    let takeover: Promise<number> = Promise.resolve(0)
    for (let v = 1; v <= 30; v++) {
      if (v === 16) {
        await killProcess(procs.get(victim) as Proc)
        killedAt = Date.now()
        takeover = waitFor('the survivor holds the lease', async () =>
          (await lease(direct(survivor)))?.leader === true ? Date.now() : undefined, 20_000)
      }
      t.equal(await put('stream', 's1', `version ${v}`, String(v)), 204, `s1 v${v}`)
      if (v <= 20) t.equal(await put('conf', `o${v - 1}`, `object ${v - 1}`), 204)
      await new Promise((resolve) => setTimeout(resolve, 60))
    }
    const tookMs = (await takeover) - killedAt
    t.ok(tookMs <= (LEASE_SECONDS * 1000 * 4) / 3 + 2500, `lease moved ${tookMs} ms after the kill (term ${LEASE_SECONDS} s, renewal ${LEASE_SECONDS * 1000 / 3} ms)`)
    await checkEdgesHoldAll(t, ess, STREAM)
    checkForwardOnly(t, await apps.stop(), STREAM)
    await checkAllConsumed(t, REST, ids, STREAM)
    const after = await waitFor('every edge on the survivor', async () => {
      const l = (await cluster()).filter((i) => i.alive)
      return l.length === 1 && l[0]?.connectedEdges === EDGES ? l : undefined
    }, 30_000)
    t.equal(after[0]?.id, survivor, `all ${EDGES} edges connected to ${survivor}, which leads: ${String(after[0]?.leader)}`)
    const nodes = await (await fetch(`${REST}/api/v1/destinations/org1`, { headers: admin })).json() as Array<{ destinationID: string, online?: boolean }>
    t.equal(nodes.filter((n) => ids.includes(n.destinationID)).length, EDGES, 'every edge known')
  })
}
