/**
 * Rollouts with a real CSS and real ESSs (EMS plugin, simulated Modbus devices): a maintenance
 * window a few seconds ahead (the edge holds the staged config and applies it when the window
 * opens, on the real clock); a delivery never consumed is `timedOut` and pauses the rollout; drift
 * (the config in force changed behind the ESS's back) is reported within a heartbeat and
 * corrected on request; a CSS restart in the middle of a rollout continues it.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../../../harness/ports.js'
import { ADMIN, basic, enroll, startCss, startEss, waitFor } from '../../helpers/cluster.js'
import { sampleEmsConfig } from '../../helpers/ems.js'
import { deviceLayer, startEdgeDevices, type EdgeDevices } from '../../helpers/sim-devices.js'
import type { CssHandle } from '../../../src/app/css.js'
import type { EssHandle } from '../../../src/app/ess.js'

interface Report { status: string, reason?: string, wave: number, edges: Array<{ edge: string, state: string, outcome: string, message?: string }> }

const top = t
const root = t.testdir()
const ports = { ListeningPort: await freePort(), MqttListeningPort: await freePort() }
let css: CssHandle = await startCss(top, path.join(root, 'css'), ports)
const headers = { authorization: basic(ADMIN), 'content-type': 'application/json' }
const api = async <T>(method: string, p: string, body?: unknown): Promise<{ status: number, body: T }> => {
  const r = await fetch(`${css.restUrl}${p}`, { method, headers: body === undefined ? { authorization: basic(ADMIN) } : headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const text = await r.text()
  return { status: r.status, body: (text === '' ? undefined : JSON.parse(text)) as T }
}
const ids = ['n1', 'n2', 'n3']
const devices = new Map<string, EdgeDevices>()
const essRoot = path.join(root, 'ess')
const ess = new Map<string, EssHandle>()
const secrets = new Map<string, string>()
const essCfg = { Plugins: 'ems', HeartbeatIntervalSeconds: 1 }
const node = (id: string): { org: string, type: string, id: string, props: string } => ({ org: 'org1', type: 'edge', id, props: `site=${id === 'n3' ? 'B' : 'A'}` })
for (const id of ids) {
  devices.set(id, await startEdgeDevices(t, 60_000))
  secrets.set(id, await enroll(css, 'org1', 'edge', id))
  ess.set(id, await startEss(top, css, essRoot, node(id), secrets.get(id), essCfg))
}
const org = sampleEmsConfig() as { core_cycle: { period_ms: number, health_window_ms?: number }, scheduler: { controllers: Array<{ enabled: boolean, parameters: Record<string, unknown> }> } }
org.core_cycle.period_ms = 200
org.core_cycle.health_window_ms = 600
org.scheduler.controllers[0]!.enabled = false // peak shaving alone: 60 kW load - threshold = discharge
// Set-up (before any assertion: tap ends a file's root test once it saw assertions and is idle).
const must = async (method: string, p: string, body: unknown): Promise<void> => {
  const r = await api(method, p, body)
  if (r.status !== 200) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(r.body)}`)
}
for (const id of ids) await must('PUT', `/api/v1/ems/org1/layers/edge:${id}`, deviceLayer(devices.get(id)!.ports))
await must('PUT', '/api/v1/ems/org1/layers/org', org)
const setpoint = (id: string): number | undefined => devices.get(id)?.battery.writes.at(-1)?.value
for (const id of ids) await waitFor(`v1 on ${id}`, async () => setpoint(id) === 10_000 ? true : undefined, 20_000)
const status = async (id: string): Promise<Report> => (await api<Report>('GET', `/api/v1/rollouts/org1/${id}`)).body
const withThreshold = (w: number): unknown => {
  const doc = structuredClone(org)
  doc.scheduler.controllers[1]!.parameters.threshold_watts = w
  return { layer: 'org', doc }
}

t.test('a closed maintenance window: the edge holds the staged config and applies it when the window opens', async (t) => {
  const opensAt = new Date(Date.now() + 6000)
  const cron = `${opensAt.getUTCSeconds()} ${opensAt.getUTCMinutes()} ${opensAt.getUTCHours()} * * *`
  const w = await api<{ open: boolean, nextOpen: string }>('PUT', '/api/v1/windows/org1/night-A', { cron, durationSeconds: 30, timeZone: 'UTC', site: 'A' })
  t.equal(w.status, 200)
  t.equal(w.body.open, false)
  t.equal(Date.parse(w.body.nextOpen), Math.floor(opensAt.getTime() / 1000) * 1000, 'the window opens at the second given')
  t.equal((await api('POST', '/api/v1/rollouts/org1', { id: 'win', kind: 'ems', change: withThreshold(45_000), windows: 'hold' })).status, 201)
  const held = await waitFor('held on n1', async () => {
    const n = (await api<{ plugins: { ems: { heldForWindow?: { version: number, nextOpen: string } } } }>('GET', '/api/v1/fleet/org1/edge/n1')).body
    return n.plugins.ems.heldForWindow
  }, 10_000)
  t.equal(held.nextOpen, w.body.nextOpen, 'the edge shows the config held and when its window opens')
  t.ok(Date.now() < Math.floor(opensAt.getTime() / 1000) * 1000, 'seen before the window opened')
  t.equal(setpoint('n1'), 10_000, 'held: the battery still gets the old setpoint')
  await waitFor('n3 (site B, no window) applied at once', async () => setpoint('n3') === 15_000 ? true : undefined, 10_000)
  await waitFor('n1 applied in its window', async () => setpoint('n1') === 15_000 ? true : undefined, 20_000)
  const opened = Math.floor(opensAt.getTime() / 1000) * 1000 // cron has whole seconds
  t.ok(Date.now() >= opened, `n1 applied it once the window opened (${Date.now() - opened} ms after)`)
  const done = await waitFor('completed', async () => { const r = await status('win'); return r.status === 'completed' ? r : undefined }, 20_000)
  t.ok(done.edges.every((e) => e.outcome === 'applied'))
  t.equal((await api('DELETE', '/api/v1/windows/org1/night-A')).status, 204)
})

t.test('a delivery never consumed is timedOut after the deadline, and counts against the error threshold', async (t) => {
  // An object no app on the edges consumes: delivered, never consumed.
  const r = await api('POST', '/api/v1/rollouts/org1', {
    id: 'fw',
    kind: 'object',
    change: { objectType: 'firmware', objectID: 'fw1', destinationType: 'edge', data: Buffer.from('firmware 2').toString('base64') },
    waves: [{ count: 1 }, { count: 2 }],
    deadlineSeconds: 3,
    errorThreshold: 0
  })
  t.equal(r.status, 201)
  const paused = await waitFor('paused', async () => { const x = await status('fw'); return x.status === 'paused' ? x : undefined }, 20_000)
  const first = paused.edges.find((e) => e.state === 'timedOut')
  t.ok(first !== undefined && first.outcome === 'timed out', `${first?.edge ?? ''} timed out: ${first?.message ?? ''}`)
  t.match(first?.message, /not consumed within 3 s \(last: delivered/)
  t.match(paused.reason, /wave 1: 1 of 1 edges failed or timed out/)
  t.ok(paused.edges.filter((e) => e.state === 'pending').length === 2, 'the next wave waits')
  t.equal((await api('POST', '/api/v1/rollouts/org1/fw/abort')).status, 202)
  await waitFor('aborted', async () => (await status('fw')).status === 'aborted' ? true : undefined, 10_000)
})

t.test('drift: a config changed behind the ESS\'s back is reported within a heartbeat and corrected on request', async (t) => {
  t.same((await api<unknown[]>('GET', '/api/v1/ems/org1/drift')).body, [], 'no drift before')
  // Someone edits the config file on the device, and the ESS restarts on it.
  await ess.get('n2')?.close()
  const file = path.join(essRoot, 'ess', 'org1-edge-n2', 'plugins', 'ems', 'active.json')
  const saved = JSON.parse(await readFile(file, 'utf8')) as { version: number, config: { scheduler: { controllers: Array<{ parameters: Record<string, unknown> }> } } }
  saved.config.scheduler.controllers[1]!.parameters.threshold_watts = 30_000
  await writeFile(file, JSON.stringify(saved))
  ess.set('n2', await startEss(top, css, essRoot, node('n2'), secrets.get('n2'), essCfg))
  await waitFor('the edited config runs', async () => setpoint('n2') === 30_000 ? true : undefined, 15_000)
  const drift = await waitFor('drift reported', async () => {
    const d = (await api<Array<{ edge: string, drift: { kind: string, detail: string } }>>('GET', '/api/v1/ems/org1/drift')).body
    return d.length > 0 ? d : undefined
  }, 5_000)
  t.same(drift.map((d) => [d.edge, d.drift.kind]), [['n2', 'changed']], 'n2 drifts: its config was changed on the device')
  const fleet = (await api<{ nodes: Array<{ id: string }> }>('GET', '/api/v1/fleet/org1?state=drift')).body
  t.same(fleet.nodes.map((n) => n.id), ['n2'], 'the fleet view filters it too')
  t.equal((await api('POST', '/api/v1/ems/org1/edges/n2/drift/correct')).status, 200)
  await waitFor('corrected on the battery', async () => setpoint('n2') === 15_000 ? true : undefined, 15_000)
  await waitFor('no drift left', async () => (await api<unknown[]>('GET', '/api/v1/ems/org1/drift')).body.length === 0 ? true : undefined, 5_000)
  t.pass('the newest config runs again, and the CSS no longer reports drift')
})

t.test('drift of any object: bytes changed in the ESS\'s store show at its next register; a restore corrects it', async (t) => {
  const data = Buffer.from('setpoint table v1, exactly as sent')
  const put = await api('PUT', '/api/v1/objects/org1/table/t1', { meta: { destinationType: 'edge', destinationID: 'n1' }, data: data.toString('base64') })
  t.equal(put.status, 204)
  type Dest = Array<{ status: string, detail: string, message: string, instanceID: number }>
  const dest = async (): Promise<Dest> => (await api<Dest>('GET', '/api/v1/objects/org1/table/t1/destinations')).body
  const first = await waitFor('delivered', async () => { const d = await dest(); return d[0]?.status === 'delivered' ? d[0] : undefined }, 10_000)
  await ess.get('n1')?.close()
  // Someone edits the bytes in the edge's store (same size, other bytes): a data file, or (data
  // this small) its record in the small-blob journal, where the bytes are base64.
  const dir = path.join(essRoot, 'ess', 'org1-edge-n1')
  const files = (await readdir(dir, { recursive: true })).map((f) => path.join(dir, String(f)))
  const edited = Buffer.from('setpoint table v1, edited by hand!')
  let changed = 0
  for (const f of files) {
    const b = await readFile(f).catch(() => undefined)
    if (b === undefined) continue
    if (b.equals(data)) { await writeFile(f, edited); changed++ }
    const text = b.toString('latin1')
    if (text.includes(data.toString('base64'))) {
      await writeFile(f, text.replaceAll(data.toString('base64'), edited.toString('base64')), 'latin1')
      changed++
    }
  }
  t.equal(changed, 1, 'the object\'s bytes found in the edge\'s store and changed')
  ess.set('n1', await startEss(top, css, essRoot, node('n1'), secrets.get('n1'), essCfg))
  const drift = await waitFor('drift on the delivery', async () => { const d = await dest(); return d[0]?.detail === 'drift' ? d[0] : undefined }, 15_000)
  t.equal(drift.status, 'error')
  t.match(drift.message, new RegExp(`holds other content than instance ${first.instanceID}`))
  const restored = await api<{ instanceID: number }>('POST', `/api/v1/objects/org1/table/t1/instances/${first.instanceID}/restore`)
  t.ok(restored.status === 200 || restored.status === 201, `restore: ${restored.status}`)
  await waitFor('delivered again', async () => { const d = await dest(); return d[0]?.status === 'delivered' && d[0].instanceID > first.instanceID ? true : undefined }, 10_000)
  t.pass('a new instance with the same content is delivered: the edge holds what it was sent again')
})

t.test('windows: wait: the CSS sends the change only when the edge\'s window opens', async (t) => {
  const opensAt = Math.floor((Date.now() + 5000) / 1000) * 1000
  const at = new Date(opensAt)
  const cron = `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} * * *`
  t.equal((await api('PUT', '/api/v1/windows/org1/day-A', { cron, durationSeconds: 30, site: 'A' })).status, 200)
  t.equal((await api('POST', '/api/v1/rollouts/org1', { id: 'waiting', kind: 'ems', change: withThreshold(42_000), windows: 'wait' })).status, 201)
  const early = await waitFor('n3 applied, n1 waiting', async () => {
    const r = await status('waiting')
    const n1 = r.edges.find((e) => e.edge === 'n1')
    return r.edges.find((e) => e.edge === 'n3')?.outcome === 'applied' && n1?.outcome === 'waiting for its maintenance window' ? r : undefined
  }, 10_000)
  t.ok(Date.now() < opensAt, 'seen before the window opened')
  t.ok(early.edges.filter((e) => e.edge !== 'n3').every((e) => e.state === 'waiting-window'), 'site A\'s edges wait; nothing was sent to them')
  t.equal(setpoint('n1'), 15_000, 'n1 keeps its setpoint')
  await waitFor('completed', async () => (await status('waiting')).status === 'completed' ? true : undefined, 20_000)
  t.ok(Date.now() >= opensAt, 'completed once the window opened')
  await waitFor('n1 at the new setpoint', async () => setpoint('n1') === 18_000 ? true : undefined, 10_000)
  t.equal((await api('DELETE', '/api/v1/windows/org1/day-A')).status, 204)
})

t.test('a CSS restart in the middle of a rollout continues it', async (t) => {
  t.equal((await api('POST', '/api/v1/rollouts/org1', { id: 'restart', kind: 'ems', change: withThreshold(40_000), waves: [{ count: 1 }, { count: 1 }, { count: 1 }] })).status, 201)
  await waitFor('wave 2 sent', async () => { const r = await status('restart'); return r.wave === 2 && r.edges.some((e) => e.state === 'sent') ? true : undefined }, 20_000)
  await css.close()
  css = await startCss(top, path.join(root, 'css'), ports)
  const done = await waitFor('completed after the restart', async () => { const r = await status('restart'); return r.status === 'completed' ? r : undefined }, 60_000)
  t.ok(done.edges.every((e) => e.outcome === 'applied'), 'all three edges applied it')
  for (const id of ids) await waitFor(`${id} at 20 kW`, async () => setpoint(id) === 20_000 ? true : undefined, 10_000)
  t.pass('read back from each battery: 60 kW load, 40 kW threshold')
})
