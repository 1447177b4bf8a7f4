/**
 * Restarts: a CSS process SIGKILLed right after (or while) publishing still ends with every
 * destination holding the object exactly once as the edge app sees it; an ESS that restarts keeps
 * its objects.
 */
import http from 'node:http'
import t from 'tap'
import { buildConfig } from '../../src/common/config/load.js'
import { silentLogger } from '../../src/common/log.js'
import { startEss as startEdgeSyncService, type EssHandle } from '../../src/app/ess.js'
import { APP, basic, channelConfig, waitFor } from '../helpers/cluster.js'
import { freePort } from '../../harness/ports.js'
import { killProcess, startProcess, type Proc } from '../helpers/processes.js'

const root = t.testdir()
// Processes restarted inside a subtest belong to the whole file, not to that subtest.
const top = t
const admin = 'Basic ' + Buffer.from('root:root-secret').toString('base64')
const restPort = await freePort()
const mqttPort = await freePort()
const CSS = `http://127.0.0.1:${restPort}`
const cssEnv = { PERSISTENCE_ROOT_PATH: `${root}/css`, LISTENING_PORT: String(restPort), MQTT_LISTENING_PORT: String(mqttPort), ADMIN_KEY: 'root', ADMIN_SECRET: 'root-secret' }
let css: Proc = await startProcess(t, 'css', cssEnv)

const kill = killProcess

async function startNode (id: string, secret: string): Promise<EssHandle> {
  const cfg = buildConfig({}, {}, {
    NodeType: 'ESS',
    OrgID: 'org1',
    DestinationType: 'edge',
    DestinationID: id,
    NodeSecret: secret,
    BrokerAddress: `mqtt://127.0.0.1:${mqttPort}`,
    PersistenceRootPath: `${root}/ess`,
    ListeningPort: 0,
    AdminKey: APP.key,
    AdminSecret: APP.secret,
    ...channelConfig(CSS)
  })
  const ess = await startEdgeSyncService(cfg, silentLogger)
  t.teardown(() => ess.close())
  return ess
}

const ids = ['n1', 'n2', 'n3']
const secrets = new Map<string, string>()
for (const id of ids) {
  const r = await fetch(`${CSS}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: { authorization: admin } })
  secrets.set(id, ((await r.json()) as { secret: string }).secret)
}
const ess = new Map<string, EssHandle>()
for (const id of ids) ess.set(id, await startNode(id, secrets.get(id) ?? ''))

// What each edge app sees: one SSE stream per node, counting update notices per object.
const seen = new Map<string, Map<string, number>>()
const aborts: AbortController[] = []
t.teardown(() => { for (const a of aborts) a.abort() })
async function watch (id: string, e: EssHandle): Promise<void> {
  const ac = new AbortController()
  aborts.push(ac)
  const res = await fetch(`${e.restUrl}/api/v1/events`, { headers: { authorization: basic(APP) }, signal: ac.signal })
  const counts = seen.get(id) ?? new Map<string, number>()
  seen.set(id, counts)
  const reader = res.body!.getReader()
  let buf = '';
  (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buf += new TextDecoder().decode(value)
      let i: number
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i)
        buf = buf.slice(i + 2)
        const m = /^event: update\ndata: (.*)$/m.exec(block)
        if (m?.[1] !== undefined) {
          const o = JSON.parse(m[1]) as { objectID: string }
          counts.set(o.objectID, (counts.get(o.objectID) ?? 0) + 1)
        }
      }
    }
  })().catch(() => {})
}
for (const [id, e] of ess) await watch(id, e)
await waitFor('all registered', async () => {
  const r = await fetch(`${CSS}/api/v1/destinations/org1`, { headers: { authorization: admin } })
  return r.ok && (await r.json() as unknown[]).length === 3 ? true : undefined
})

async function put (id: string): Promise<number> {
  const r = await fetch(`${CSS}/api/v1/objects/org1/conf/${id}`, { method: 'PUT', headers: { authorization: admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationsList: ids.map((n) => `edge:${n}`) }, data: Buffer.from(id).toString('base64') }) })
  return r.status
}

t.test('restart - CSS killed right after a fan-out: every node gets the object exactly once', async (t) => {
  t.equal(await put('after'), 204)
  await kill(css)
  css = await startProcess(top, 'css', cssEnv)
  for (const [id, e] of ess) {
    await waitFor(`after on ${id}`, async () => (await fetch(`${e.restUrl}/api/v1/objects/conf/after`, { headers: { authorization: basic(APP) } })).status === 200 ? true : undefined, 20_000)
    t.equal((await fetch(`${e.restUrl}/api/v1/objects/conf/after/consumed`, { method: 'PUT', headers: { authorization: basic(APP) } })).status, 204)
  }
  const d = await waitFor('all consumed in the restarted CSS', async () => {
    const list = await (await fetch(`${CSS}/api/v1/objects/org1/conf/after/destinations`, { headers: { authorization: admin } })).json() as Array<{ status: string }>
    return list.length === 3 && list.every((x) => x.status === 'consumed') ? list : undefined
  }, 20_000)
  t.equal(d.length, 3)
  for (const id of ids) t.equal(seen.get(id)?.get('after'), 1, `${id}'s app saw "after" once`)
})

t.test('restart - CSS killed while a write is half received: never acknowledged, never stored, never delivered', async (t) => {
  // Deterministic: the kill lands while the CSS holds half of the body (a torn request), every run.
  const body = JSON.stringify({ meta: { destinationsList: ids.map((n) => `edge:${n}`) }, data: Buffer.alloc(256 * 1024, 7).toString('base64') })
  const req = http.request(`${CSS}/api/v1/objects/org1/conf/torn`, {
    method: 'PUT',
    headers: { authorization: admin, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
  })
  const answer = new Promise<number>((resolve) => {
    req.on('response', (res) => { resolve(res.statusCode ?? 0) })
    req.on('error', () => { resolve(0) })
  })
  await new Promise<void>((resolve) => { req.write(body.slice(0, body.length / 2), () => { resolve() }) })
  await kill(css)
  t.equal(await answer, 0, 'the half-sent write was never acknowledged')
  css = await startProcess(top, 'css', cssEnv)
  t.equal((await fetch(`${CSS}/api/v1/objects/org1/conf/torn`, { headers: { authorization: admin } })).status, 404, 'nothing of it was stored')
  // Barrier: an object written after the restart reaches every edge app; anything published
  // before it would have arrived first.
  t.equal(await put('after-torn'), 204)
  await waitFor('after-torn seen by every app', async () => ids.every((id) => seen.get(id)?.get('after-torn') === 1) ? true : undefined, 20_000)
  for (const id of ids) t.equal(seen.get(id)?.get('torn') ?? 0, 0, `${id}'s app never saw "torn"`)
})

t.test('restart - an ESS that restarts keeps its objects', async (t) => {
  const n1 = ess.get('n1')!
  const before = await (await fetch(`${n1.restUrl}/api/v1/objects/conf/after`, { headers: { authorization: basic(APP) } })).json() as { instanceID: number }
  await n1.close()
  await kill(css) // no CSS to resend anything: what the edge shows comes from its own store
  const again = await startNode('n1', secrets.get('n1') ?? '')
  const meta = await (await fetch(`${again.restUrl}/api/v1/objects/conf/after`, { headers: { authorization: basic(APP) } })).json() as { instanceID: number, status: string }
  t.equal(meta.instanceID, before.instanceID)
  t.equal(meta.status, 'objconsumed')
  t.equal(await (await fetch(`${again.restUrl}/api/v1/objects/conf/after/data`, { headers: { authorization: basic(APP) } })).text(), 'after')
})
