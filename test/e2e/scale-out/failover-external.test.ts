/**
 * Two CSS processes on one store (FerretDB on PostgreSQL) and one Mosquitto, sharing the edges'
 * messages through `$share/css/...`; six real ESS processes. A stream of 30 versions of one object
 * and 20 other objects is written through both CSS; the lease holder is SIGKILLed in the middle.
 * The survivor takes the lease within its term plus one renewal; the killed instance comes back
 * under its own name and picks up what the broker queued for it; every edge ends with the newest
 * version of everything (data compared), every destination ends consumed, and no edge app ever
 * saw the streamed object go backwards.
 */
import path from 'node:path'
import t from 'tap'
import { mosquittoAclText, mosquittoPasswordLine } from '../../../src/security/index.js'
import { startFerretDb } from '../../../harness/ferretdb.js'
import { startMosquitto } from '../../../harness/mosquitto.js'
import { requireBinary } from '../../helpers/binaries.js'
import { ADMIN, APP, basic, waitFor } from '../../helpers/cluster.js'
import { killProcess, startProcess, type Proc } from '../../helpers/processes.js'

const mosqBin = requireBinary(t, 'mosquitto', 'apt-get install mosquitto')
const ferretBin = requireBinary(t, 'ferretdb', 'run .ci/install-ferretdb.sh')
const pgBin = requireBinary(t, 'postgres', 'apt-get install postgresql')
const LEASE_SECONDS = 2
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
  await Promise.all(ids.map(async (id) => {
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
  }))

  t.test('scale-out - one lease holder, seen alike by both instances', async (t) => {
    const both = await waitFor('one leader', async () => {
      const l = await Promise.all([...urls.values()].map(lease))
      return l.filter((x) => x?.leader === true).length === 1 && l[0]?.holder === l[1]?.holder ? l : undefined
    })
    t.equal(both.filter((x) => x?.leader === true).length, 1, 'exactly one leader')
    t.ok(both[0]?.holder === 'css-a' || both[0]?.holder === 'css-b', `holder ${String(both[0]?.holder)}`)
  })

  t.test('scale-out - a CSS dies mid-stream: lease moves, nothing lost, nothing goes backwards', async (t) => {
    await waitFor('every edge registered', async () => {
      const list = await (await fetch(`${urls.get('css-b') ?? ''}/api/v1/destinations/org1`, { headers: { authorization: basic(ADMIN) } })).json() as unknown[]
      return list.length === EDGES ? true : undefined
    }, 60_000)
    // Each edge's app polls the streamed object, as an Open Horizon app does, and notes its version.
    const seen = new Map<string, number[]>(ids.map((id) => [id, []]))
    let polling = true
    const apps = ids.map(async (id) => {
      while (polling) {
        const r = await fetch(`${ess.get(id) ?? ''}/api/v1/objects/stream/s1`, { headers: { authorization: basic(APP) } }).catch(() => undefined)
        if (r?.status === 200) {
          const v = Number(((await r.json()) as { description?: string }).description ?? 0)
          const list = seen.get(id) ?? []
          if (list.at(-1) !== v) list.push(v)
        }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    })
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
    const back = await startProcess(t, 'css', cssEnv(victim))
    urls.set(victim, restOf(back))
    for (const id of ids) {
      const e = ess.get(id) ?? ''
      const s1 = await waitFor(`s1 v30 on ${id}`, async () => {
        const r = await fetch(`${e}/api/v1/objects/stream/s1/data`, { headers: { authorization: basic(APP) } })
        const text = r.status === 200 ? await r.text() : ''
        return text === 'version 30' ? text : undefined
      }, 60_000)
      t.equal(s1, 'version 30')
      for (let i = 0; i < 20; i++) {
        const text = await waitFor(`o${i} on ${id}`, async () => {
          const r = await fetch(`${e}/api/v1/objects/conf/o${i}/data`, { headers: { authorization: basic(APP) } })
          return r.status === 200 ? await r.text() : undefined
        }, 60_000)
        if (text !== `object ${i}`) t.fail(`o${i} on ${id}: ${text}`)
      }
      for (const [type, oid] of [['stream', 's1'], ...Array.from({ length: 20 }, (_, i) => ['conf', `o${i}`])]) {
        const r = await fetch(`${e}/api/v1/objects/${type ?? ''}/${oid ?? ''}/consumed`, { method: 'PUT', headers: { authorization: basic(APP) } })
        if (r.status !== 204) t.fail(`consume ${String(oid)} on ${id}: ${r.status}`)
      }
    }
    polling = false
    await Promise.all(apps)
    for (const [id, versions] of seen) {
      t.ok(versions.every((v, i) => i === 0 || v > (versions[i - 1] ?? 0)), `${id}'s app saw ${versions.join(',')}`)
      t.equal(versions.at(-1), 30)
    }
    for (const oid of ['s1', ...Array.from({ length: 20 }, (_, i) => `o${i}`)]) {
      const type = oid === 's1' ? 'stream' : 'conf'
      const list = await waitFor(`${oid} consumed everywhere`, async () => {
        const r = await fetch(`${urls.get(survivor) ?? ''}/api/v1/objects/org1/${type}/${oid}/destinations`, { headers: { authorization: basic(ADMIN) } })
        const l = await r.json() as Array<{ status: string }>
        return l.length === EDGES && l.every((d) => d.status === 'consumed') ? l : undefined
      }, 60_000)
      t.equal(list.length, EDGES, `${oid}: every destination consumed`)
    }
  })
}
