/**
 * Rollouts against `syncctl sim`: 20 real ESS processes with the EMS plugin, each driving its own
 * simulated Modbus devices. (1) A change in 3 waves (10%, 40%, 50%) with a success threshold:
 * the waves go in order, the third only after the second held. (2) A change that fails at run
 * time on a third of the second wave's edges (a device their config points at does not answer):
 * the rollout pauses at the error threshold; abort returns every changed edge to its previous
 * config (read back from each battery's setpoint register), the third wave never receives it,
 * and the report names each edge and why.
 */
import t from 'tap'
import { freePort } from '../../../harness/ports.js'
import { waitFor } from '../../helpers/cluster.js'
import { batterySetpoint, startSim } from '../../helpers/sim-process.js'
import { SimulatedDevice } from '../../../src/ems/edge/modbus.js'
import { loadProfiles } from '../../../src/ems/common/profiles.js'

interface EdgeReport { edge: string, wave: number, state: string, outcome: string, from?: number, to?: number, sentAt?: string, doneAt?: string, message?: string, revertedTo?: number }
interface Report { id: string, status: string, reason?: string, wave: number, waves: Array<{ wave: number, size: number, consumed: number }>, edges: EdgeReport[] }

const sim = await startSim(t, ['--edges', '20', '--sites', '2', '--cycle-ms', '500'])
const { rest, edges } = sim.ready
const admin = await sim.admin()
const authorization = `Basic ${Buffer.from(`${admin.appKey}:${admin.secret}`).toString('base64')}`
const api = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number, body: T }> => {
  const r = await fetch(`${rest}${path}`, {
    method,
    headers: body === undefined ? { authorization } : { authorization, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await r.text()
  return { status: r.status, body: (text === '' ? undefined : JSON.parse(text)) as T }
}
const batteryPort = (edge: string): number => edges.find((e) => e.edge === edge)?.ports.bms_main ?? 0
const status = async (id: string): Promise<Report> => (await api<Report>('GET', `/api/v1/rollouts/sim/${id}`)).body
const versions = async (): Promise<Map<string, number>> =>
  new Map((await api<Array<{ edge: string, latest: number }>>('GET', '/api/v1/ems/sim/status')).body.map((s) => [s.edge, s.latest]))
const org = (await api<Record<string, unknown>>('GET', '/api/v1/ems/sim/layers/org')).body
const controllers = (target: number, threshold: number): unknown[] => [
  { id: 'ctrlBalancing0', parameters: { target_grid_power: target } },
  { id: 'ctrlPeakShaving0', parameters: { threshold_watts: threshold } }
]
const merged = (patch: Record<string, unknown>): Record<string, unknown> => {
  const doc = structuredClone(org) as { scheduler: { controllers: Array<{ id: string, parameters: Record<string, unknown> }> }, modbus_devices: Array<Record<string, unknown>> }
  const p = patch as { controllers?: Array<{ id: string, parameters: Record<string, unknown> }>, devices?: Array<Record<string, unknown>> }
  for (const c of p.controllers ?? []) Object.assign(doc.scheduler.controllers.find((x) => x.id === c.id)?.parameters ?? {}, c.parameters)
  for (const d of p.devices ?? []) {
    const i = doc.modbus_devices.findIndex((x) => x.device_id === d.device_id)
    if (i < 0) doc.modbus_devices.push(d)
    else doc.modbus_devices[i] = d
  }
  return doc
}

t.test('three waves (10%, 40%, 50%): in order, each after the previous held its threshold', async (t) => {
  const change = { layer: 'org', doc: merged({ controllers: controllers(0, 5000) }) }
  const preview = await api<{ waves: Array<Array<{ edge: string, changes: unknown[] }>> }>('POST', '/api/v1/rollouts/sim?preview=true', { kind: 'ems', change, waves: [{ percent: 10 }, { percent: 40 }, { percent: 50 }] })
  t.same(preview.body.waves.map((w) => w.length), [2, 8, 10], 'the preview: 2, 8 and 10 edges')
  t.ok(preview.body.waves.every((w) => w.every((e) => e.changes.length === 1)), 'each with its one-line diff')
  const before = await versions()
  const created = await api<Report>('POST', '/api/v1/rollouts/sim', { id: 'peak5k', kind: 'ems', change, waves: [{ percent: 10 }, { percent: 40 }, { percent: 50 }], successThreshold: 1, errorThreshold: 0 })
  t.equal(created.status, 201)
  const done = await waitFor('completed', async () => { const r = await status('peak5k'); return r.status === 'completed' ? r : undefined }, 90_000)
  const byWave = [1, 2, 3].map((w) => done.edges.filter((e) => e.wave === w))
  t.same(byWave.map((w) => w.length), [2, 8, 10])
  t.ok(done.edges.every((e) => e.state === 'consumed' && e.outcome === 'applied'), 'every edge applied it')
  for (const w of [1, 2]) {
    const lastDone = Math.max(...(byWave[w - 1] ?? []).map((e) => Date.parse(e.doneAt ?? '')))
    const firstSent = Math.min(...(byWave[w] ?? []).map((e) => Date.parse(e.sentAt ?? '')))
    t.ok(firstSent >= lastDone, `wave ${w + 1} was sent only after every edge of wave ${w} consumed (${firstSent - lastDone} ms later)`)
  }
  const after = await versions()
  t.ok(done.edges.every((e) => after.get(e.edge) === (before.get(e.edge) ?? 0) + 1), 'one new version per edge')
  const layer = (await api<{ scheduler: { controllers: Array<{ parameters: { threshold_watts?: number } }> } }>('GET', '/api/v1/ems/sim/layers/org')).body
  t.equal(layer.scheduler.controllers[1]?.parameters.threshold_watts, 5000, 'the org layer itself is written after the last wave')
  t.equal((await api<{ published?: unknown[] }>('PUT', '/api/v1/ems/sim/layers/org?preview=true', change.doc)).body.published, undefined)
})

t.test('a change failing on a third of wave 2 pauses the rollout; abort reverts every changed edge', async (t) => {
  // Set-up (not part of the rollout): a meter "meter_x" in every config, polled by no one yet.
  // Each edge's points at a meter of its own (a simulated Modbus server started here), except on
  // three edges of the coming second wave, where nothing listens. The rollout then starts polling
  // it (and charges the batteries).
  const dead = await freePort()
  const meter = { device_id: 'meter_x', profile: 'grid_meter', connection: { protocol: 'tcp', host: '127.0.0.1', port: dead, unit_id: 1 }, poll_groups: { fast: [], slow: [] } }
  const base = merged({ controllers: controllers(0, 5000), devices: [meter] })
  t.equal((await api('PUT', '/api/v1/ems/sim/layers/org', base)).status, 200)
  const sorted = edges.map((e) => e.edge).sort()
  const wave2 = sorted.slice(2, 10)
  const bad = wave2.slice(0, 3)
  const profile = loadProfiles().get('grid_meter')
  for (const e of edges) {
    if (bad.includes(e.edge) || profile === undefined) continue
    const m = new SimulatedDevice(profile)
    m.set('ActivePower', 100)
    const port = await m.listen('127.0.0.1')
    t.teardown(async () => { await m.close() })
    const pr = await api('PATCH', `/api/v1/ems/sim/layers/edge:${e.edge}`, { modbus_devices: [{ device_id: 'meter_x', connection: { port } }] })
    if (pr.status !== 200) t.fail(`edge layer of ${e.edge}: ${JSON.stringify(pr.body)}`)
  }
  await waitFor('set-up in force everywhere', async () => {
    const s = (await api<Array<{ status: string }>>('GET', '/api/v1/ems/sim/status')).body
    return s.every((x) => x.status === 'consumed') ? true : undefined
  }, 60_000)
  const before = await versions()
  const setpoints = new Map<string, number>()
  for (const e of sorted) setpoints.set(e, await batterySetpoint(batteryPort(e)))
  t.ok([...setpoints.values()].every((v) => v > -100_000), 'every battery at the org default before')

  const change = { layer: 'org', doc: merged({ controllers: controllers(1_000_000, 2_000_000), devices: [{ ...meter, poll_groups: { fast: ['ActivePower'], slow: [] } }] }) }
  const created = await api<Report>('POST', '/api/v1/rollouts/sim', { id: 'charge', kind: 'ems', change, waves: [{ percent: 10 }, { percent: 40 }, { percent: 50 }], errorThreshold: 0.2, onError: 'pause' })
  t.equal(created.status, 201)
  const paused = await waitFor('paused at the error threshold', async () => { const r = await status('charge'); return r.status === 'paused' ? r : undefined }, 60_000)
  t.match(paused.reason, /wave 2: \d of 8 edges failed or timed out \(threshold 0\.2\)/, `paused: ${paused.reason ?? ''}`)
  t.equal(paused.wave, 2)
  // Let the rest of wave 2 finish what it has (nothing new starts while paused).
  await waitFor('wave 2 settled', async () => { const r = await status('charge'); return r.edges.filter((e) => e.wave === 2).every((e) => e.state !== 'sent') ? r : undefined }, 30_000)
  const settled = await status('charge')
  t.same(settled.edges.filter((e) => e.state === 'error').map((e) => e.edge).sort(), [...bad].sort(), 'exactly the three edges whose meter does not answer failed')
  t.ok(settled.edges.filter((e) => e.state === 'error').every((e) => e.outcome === 'rolled back' && /meter_x/.test(e.message ?? '')), 'each rolled back by its own plugin, naming the device')
  for (const e of sorted.slice(0, 10).filter((x) => !bad.includes(x))) {
    await waitFor(`${e} charging`, async () => (await batterySetpoint(batteryPort(e))) < -900_000 ? true : undefined, 20_000)
  }
  t.pass('the edges that applied it charge their batteries at about 1 MW')

  const ab = await api('POST', '/api/v1/rollouts/sim/charge/abort')
  t.equal(ab.status, 202, JSON.stringify(ab.body))
  const aborted = await waitFor('aborted', async () => { const r = await status('charge'); return r.status === 'aborted' ? r : undefined }, 30_000)
  const changed = aborted.edges.filter((e) => e.wave <= 2)
  t.equal(changed.length, 10)
  t.ok(changed.every((e) => e.state === 'reverted' && e.revertedTo !== undefined), 'every edge of waves 1 and 2 reverted, each to a new version')
  t.ok(aborted.edges.filter((e) => e.wave === 3).every((e) => e.state === 'skipped' && /never sent/.test(e.message ?? '')), 'the third wave: never sent')
  t.ok(changed.filter((e) => bad.includes(e.edge)).every((e) => /error \(rolled back to version \d+: device meter_x/.test(e.message ?? '')), 'the report says why each failed edge failed')
  for (const e of sorted.slice(0, 10)) {
    await waitFor(`${e} back at its previous config`, async () => (await batterySetpoint(batteryPort(e))) > -100_000 ? true : undefined, 30_000)
  }
  t.pass('read back over Modbus: every battery of waves 1 and 2 is back at the previous setpoint')
  const after = await versions()
  t.ok(sorted.slice(10).every((e) => after.get(e) === before.get(e)), 'wave 3 edges: no new version at all')
  for (const e of sorted.slice(10)) t.ok((await batterySetpoint(batteryPort(e))) > -100_000, `${e} never charged`)
  const audit = (await api<Array<{ action: string, target: string }>>('GET', '/api/v1/audit/sim')).body
  t.ok(['rollout.create', 'rollout.abort', 'rollout.aborted'].every((a) => audit.some((x) => x.action === a && x.target === 'charge')), 'created, abort asked, aborted: all audited')
})
