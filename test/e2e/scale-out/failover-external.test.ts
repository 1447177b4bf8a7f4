/**
 * Two CSS processes on one store (FerretDB on PostgreSQL) and one Mosquitto, sharing the edges'
 * messages through `$share/css/...`; six real ESS processes. A stream of 30 versions of one object
 * and 20 other objects is written through both CSS; the lease holder is SIGKILLed in the middle.
 * The survivor takes the lease within its term plus one renewal; the killed instance comes back
 * under its own name and picks up what the broker queued for it; every edge ends with the newest
 * version of everything (data compared), every destination ends consumed, and no edge app ever
 * saw the streamed object go backwards.
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import t from 'tap'
import { forEachLimit } from '../../../src/common/concurrency.js'
import { mosquittoAclText, mosquittoPasswordLine } from '../../../src/security/index.js'
import { startFerretDb } from '../../../harness/ferretdb.js'
import { startMosquitto } from '../../../harness/mosquitto.js'
import { requireBinary } from '../../helpers/binaries.js'
import { ADMIN, APP, basic, waitFor } from '../../helpers/cluster.js'
import WebSocket from 'ws'
import { sampleEmsConfig } from '../../helpers/ems.js'
import { createProgram } from '../../../src/admin/program.js'
import { killProcess, startProcess, type Proc } from '../../helpers/processes.js'
import { checkLinkFollows } from '../../helpers/link-check.js'
import { checkAllConsumed, checkEdgesHoldAll, checkForwardOnly, watchStream } from '../../helpers/stream-check.js'

const mosqBin = requireBinary(t, 'mosquitto', 'apt-get install mosquitto')
const ferretBin = requireBinary(t, 'ferretdb', 'run .ci/install-ferretdb.sh')
const pgBin = requireBinary(t, 'postgres', 'apt-get install postgresql')
const LEASE_SECONDS = 2
const STREAM = { versions: 30, others: 20 }
const top = t
const EDGES = 6

interface Lease { leader: boolean, holder?: string, version?: number }

if (mosqBin !== undefined && ferretBin !== undefined && pgBin !== undefined) {
  const root = t.testdir()
  const db = await startFerretDb(ferretBin, { backend: 'postgresql' })
  t.teardown(() => db.stop())
  const cssLine = mosquittoPasswordLine('css', 'css-secret')
  const mosq = await startMosquitto(mosqBin, cssLine, mosquittoAclText('css', []))
  t.teardown(() => mosq.stop())
  const cssEnv = (name: string): Record<string, string> => ({
    PERSISTENCE_ROOT_PATH: path.join(root, name),
    LISTENING_PORT: '0',
    ADMIN_KEY: ADMIN.key,
    ADMIN_SECRET: ADMIN.secret,
    STORAGE_PROVIDER: 'mongo',
    MONGO_URI: db.uri,
    MONGO_DB_NAME: 'scale',
    BROKER_MODE: 'external',
    BROKER_ADDRESS: mosq.url,
    BROKER_USERNAME: 'css',
    BROKER_PASSWORD: 'css-secret',
    CSS_INSTANCE_ID: name,
    LEASE_SECONDS: String(LEASE_SECONDS)
  })
  const restOf = (p: Proc): string => /REST (\S+)/.exec(p.line)?.[1] ?? ''
  const procs = new Map<string, Proc>()
  for (const name of ['css-a', 'css-b']) procs.set(name, await startProcess(t, 'css', cssEnv(name)))
  const urls = new Map([...procs].map(([n, p]) => [n, restOf(p)]))
  const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
  const lease = async (url: string): Promise<Lease | undefined> => {
    try {
      return ((await (await fetch(`${url}/readyz`)).json()) as { lease: Lease }).lease
    } catch {
      return undefined
    }
  }

  const ids = Array.from({ length: EDGES }, (_, i) => `n${i}`)
  const secrets = new Map<string, string>()
  for (const [i, id] of ids.entries()) {
    // Enrolment through either instance: the node is in the shared store.
    const url = urls.get(i % 2 === 0 ? 'css-a' : 'css-b') ?? ''
    const r = await fetch(`${url}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
    secrets.set(id, ((await r.json()) as { secret: string }).secret)
  }
  await mosq.setAuth(
    [cssLine, ...ids.map((id) => mosquittoPasswordLine(`org1/edge/${id}`, secrets.get(id) ?? ''))].join('\n'),
    mosquittoAclText('css', ids.map((id) => ({ orgId: 'org1', destinationType: 'edge', destinationId: id })))
  )
  const ess = new Map<string, string>()
  // Three at a time: ten processes compiling through the test loader at once on two cores (and
  // the other scale-out file's beside them) would not be ready within the start timeout.
  await forEachLimit(ids, 3, async (id) => {
    const p = await startProcess(t, 'ess', {
      PERSISTENCE_ROOT_PATH: path.join(root, 'ess', id),
      LISTENING_PORT: '0',
      ORG_ID: 'org1',
      DESTINATION_TYPE: 'edge',
      DESTINATION_ID: id,
      NODE_SECRET: secrets.get(id) ?? '',
      BROKER_ADDRESS: mosq.url,
      ADMIN_KEY: APP.key,
      ADMIN_SECRET: APP.secret
    })
    ess.set(id, restOf(p))
  })

  t.test('scale-out - one lease holder, seen alike by both instances', async (t) => {
    const both = await waitFor('one leader', async () => {
      const l = await Promise.all([...urls.values()].map(lease))
      return l.filter((x) => x?.leader === true).length === 1 && l[0]?.holder === l[1]?.holder ? l : undefined
    })
    t.equal(both.filter((x) => x?.leader === true).length, 1, 'exactly one leader')
    t.ok(both[0]?.holder === 'css-a' || both[0]?.holder === 'css-b', `holder ${String(both[0]?.holder)}`)
  })

  t.test('scale-out - a resumable upload whose pieces go to different instances', async (t) => {
    const data = Buffer.alloc(3 * 1024 * 1024)
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) % 251
    const sha = createHash('sha256').update(data).digest('hex')
    const via = ['css-a', 'css-b', 'css-a']
    const piece = 1024 * 1024
    // The object exists first (metadata), then its data comes in pieces, each to another instance.
    t.equal((await fetch(`${urls.get('css-a') ?? ''}/api/v1/objects/org1/big/u1`, { method: 'PUT', headers: admin, body: JSON.stringify({ meta: { destinationType: 'edge', destinationID: 'n0' } }) })).status, 204)
    for (let i = 0; i < 3; i++) {
      const url = `${urls.get(via[i] ?? '') ?? ''}/api/v1/objects/org1/big/u1/data`
      const r = await fetch(url, {
        method: 'PUT',
        headers: { authorization: basic(ADMIN), 'content-type': 'application/octet-stream', 'content-range': `bytes ${i * piece}-${(i + 1) * piece - 1}/${data.length}`, ...(i === 0 ? { 'x-data-sha256': sha } : {}) },
        body: data.subarray(i * piece, (i + 1) * piece)
      })
      t.equal(r.status, i < 2 ? 202 : 204, `piece ${i} via ${via[i] ?? ''}`)
      if (i === 0) {
        // The other instance knows where the upload stands.
        const st = await (await fetch(`${urls.get('css-b') ?? ''}/api/v1/objects/org1/big/u1/upload`, { headers: { authorization: basic(ADMIN) } })).json() as { received: number }
        t.equal(st.received, piece, 'css-b sees the piece css-a stored')
      }
    }
    const got = await waitFor('u1 on n0', async () => {
      const r = await fetch(`${ess.get('n0') ?? ''}/api/v1/objects/big/u1/data`, { headers: { authorization: basic(APP) } })
      return r.status === 200 ? Buffer.from(await r.arrayBuffer()) : undefined
    }, 60_000)
    t.equal(createHash('sha256').update(got).digest('hex'), sha, 'the edge got the whole object, byte for byte')
  })

  t.test('scale-out - a CSS dies mid-stream: lease moves, nothing lost, nothing goes backwards', async (t) => {
    await waitFor('every edge registered', async () => {
      const list = await (await fetch(`${urls.get('css-b') ?? ''}/api/v1/destinations/org1`, { headers: { authorization: basic(ADMIN) } })).json() as unknown[]
      return list.length === EDGES ? true : undefined
    }, 60_000)
    // Each edge's app polls the streamed object, as an Open Horizon app does, and notes its version.
    const apps = watchStream(ess)
    const put = async (url: string, type: string, id: string, data: string, description?: string): Promise<number> =>
      (await fetch(`${url}/api/v1/objects/org1/${type}/${id}`, {
        method: 'PUT',
        headers: admin,
        body: JSON.stringify({ meta: { destinationType: 'edge', ...(description === undefined ? {} : { description }) }, data: Buffer.from(data).toString('base64') })
      }).catch(() => undefined))?.status ?? 0
    const l0 = await Promise.all([...urls].map(async ([n, u]) => [n, await lease(u)] as const))
    const victim = l0.find(([, l]) => l?.leader === true)?.[0] ?? 'css-a'
    const survivor = victim === 'css-a' ? 'css-b' : 'css-a'
    let killedAt = 0
    let takeover: Promise<number> = Promise.resolve(0)
    for (let v = 1; v <= 30; v++) {
      if (v === 16) {
        await killProcess(procs.get(victim) as Proc)
        killedAt = Date.now()
        // Watched beside the stream, so the figure is the takeover's, not the stream's.
        takeover = waitFor('the survivor holds the lease', async () =>
          (await lease(urls.get(survivor) ?? ''))?.leader === true ? Date.now() : undefined, 20_000)
      }
      const via = v < 16 && v % 2 === 0 ? victim : survivor
      t.equal(await put(urls.get(via) ?? '', 'stream', 's1', `version ${v}`, String(v)), 204, `s1 v${v} via ${via}`)
      if (v <= 20) t.equal(await put(urls.get(via) ?? '', 'conf', `o${v - 1}`, `object ${v - 1}`), 204)
      await new Promise((resolve) => setTimeout(resolve, 60))
    }
    const tookMs = (await takeover) - killedAt
    t.ok(tookMs <= (LEASE_SECONDS * 1000 * 4) / 3 + 2500, `lease moved ${tookMs} ms after the kill (term ${LEASE_SECONDS} s, renewal ${LEASE_SECONDS * 1000 / 3} ms)`)
    // The victim returns under its own name: its persistent session gives it what was queued.
    // On the file's test, not this subtest's: the next subtest uses it too.
    const back = await startProcess(top, 'css', cssEnv(victim))
    urls.set(victim, restOf(back))
    let out = ''
    const ctl = createProgram({ stdout: (x) => { out += x }, stderr: () => {}, fetch, env: { SYNC_URL: urls.get(victim), SYNC_KEY: ADMIN.key, SYNC_SECRET: ADMIN.secret } })
    await ctl.parseAsync(['node', 'syncctl', 'cluster', 'status'])
    t.match(out, new RegExp(`lease: ${survivor} \\(term \\d+\\); answered by ${victim}`), 'syncctl cluster status: the survivor leads')
    // Edges: '-', an external broker does not say who is connected where.
    t.match(out, new RegExp(`${survivor}\\s+alive\\s+yes\\s+-`), 'the survivor, alive and leading')
    t.match(out, new RegExp(`${victim}\\s+alive\\s+-`), 'the returned instance, alive, not leading')
    t.comment(out)
    await checkEdgesHoldAll(t, ess, STREAM)
    checkForwardOnly(t, await apps.stop(), STREAM)
    await checkAllConsumed(t, urls.get(survivor) ?? '', ids, STREAM)
  })
  t.test('scale-out - an edge on the HTTP link of one instance gets what another instance publishes', async (t) => {
    // w1 polls css-b only; css-a publishes to the broker, and css-b follows w1's topics there.
    await checkLinkFollows(t, { polled: urls.get('css-b') ?? '', writer: urls.get('css-a') ?? '', root })
  })

  t.test('scale-out - an EMS change on one instance reaches an HTTP-only edge whose WebSocket is on the other', async (t) => {
    const [a, b] = [urls.get('css-a') ?? '', urls.get('css-b') ?? '']
    const r = await fetch(`${a}/api/v1/nodes/org1/edge/h1/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
    const h1 = { authorization: basic({ key: 'org1/edge/h1', secret: ((await r.json()) as { secret: string }).secret }) }
    t.equal((await fetch(`${a}/api/v1/ems/org1/layers/org`, { method: 'PUT', headers: admin, body: JSON.stringify(sampleEmsConfig()) })).status, 200)
    const hb = await fetch(`${a}/api/v1/edges/h1/heartbeat`, { method: 'POST', headers: { ...h1, 'content-type': 'application/json' }, body: JSON.stringify({ sync_status: 'pending', properties: { site: 'A' } }) })
    t.equal(hb.status, 200)
    const ws = new WebSocket(b.replace('http:', 'ws:') + '/ws/edges/h1/notify', { headers: h1 })
    t.teardown(() => { ws.close() })
    const messages: Array<{ type: string, version?: number }> = []
    ws.on('message', (d) => { messages.push(JSON.parse(String(d)) as { type: string, version?: number }) })
    await waitFor('hello from css-b', async () => messages.some((m) => m.type === 'hello') ? true : undefined)
    const t0 = Date.now()
    const change = { scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: 45000 } }] } }
    t.equal((await fetch(`${a}/api/v1/ems/org1/layers/site:A`, { method: 'PUT', headers: admin, body: JSON.stringify(change) })).status, 200, 'the change is made on css-a')
    // (A notice of v1, made by the heartbeat on css-a a moment before, may come first.)
    const note = await waitFor('the notice of v2 on css-b', async () => messages.find((m) => m.type === 'config_updated' && m.version === 2), 15_000)
    t.equal(note.version, 2)
    t.comment(`change on css-a to notice on css-b's socket: ${Date.now() - t0} ms`)
    const cfg = await fetch(`${b}/api/v1/edges/h1/config`, { headers: h1 })
    t.equal(((await cfg.json()) as { version: number }).version, 2, 'css-b serves the new config')
  })
}
