/**
 * EMS end to end with real Modbus TCP devices (modbus-serial servers): a site change is applied by
 * every edge of the site and visible in the setpoint written to the battery; a config that breaks
 * the runtime is rolled back and reported; an edge offline during two changes gets only the latest.
 */
import t from 'tap'
import { edgeBarrier } from '../helpers/barrier.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { sampleEmsConfig } from '../helpers/ems.js'
import { deviceLayer, startEdgeDevices, type EdgeDevices } from '../helpers/sim-devices.js'
import { freePort } from '../../harness/ports.js'

const root = t.testdir()
const css = await startCss(t, `${root}/css`)
const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
const ems = `${css.restUrl}/api/v1/ems/org1`
const ids = ['n1', 'n2']
const devices = new Map<string, EdgeDevices>()
for (const id of ids) devices.set(id, await startEdgeDevices(t, 60000))
const essCfg = { Plugins: 'ems', HeartbeatIntervalSeconds: 1 }
const ess = new Map<string, Awaited<ReturnType<typeof startEss>>>()
const secrets = new Map<string, string>()
let signingKey = ''
for (const id of ids) {
  const r = await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
  const e = await r.json() as { secret: string, signingKey: string }
  secrets.set(id, e.secret)
  signingKey = e.signingKey
  ess.set(id, await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id, props: 'site=A' }, e.secret, { ...essCfg, SigningKey: e.signingKey }))
}
await waitFor('2 nodes', async () => ((await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json()) as unknown[]).length === 2 ? true : undefined)

const lastSetpoint = (id: string): number | undefined => devices.get(id)?.battery.writes.at(-1)?.value
async function plugin (id: string): Promise<{ activeVersion?: number, lastError?: string }> {
  const h = await (await fetch(`${ess.get(id)?.restUrl ?? ''}/api/v1/health`, { headers: { authorization: basic(APP) } })).json() as { plugins: { ems: { activeVersion?: number, lastError?: string } } }
  return h.plugins.ems
}
async function delivery (id: string): Promise<{ status: string, message: string } | undefined> {
  const list = await (await fetch(`${css.restUrl}/api/v1/objects/org1/ems-config/${id}/destinations`, { headers: admin })).json() as Array<{ status: string, message: string }>
  return list[0]
}
async function putLayer (layer: string, doc: unknown): Promise<Response> {
  return await fetch(`${ems}/layers/${layer}`, { method: 'PUT', headers: admin, body: JSON.stringify(doc) })
}

const org = sampleEmsConfig() as any
org.core_cycle.period_ms = 200
org.core_cycle.health_window_ms = 800
org.scheduler.controllers[0].enabled = false // peak shaving alone, so its threshold shows in the setpoint

t.test('ems edge - layers built in any order; the complete config is applied and drives the battery', async (t) => {
  for (const id of ids) t.equal((await putLayer(`edge:${id}`, deviceLayer(devices.get(id)!.ports))).status, 200, 'edge layer stored (incomplete: nothing published)')
  t.equal((await putLayer('org', org)).status, 200)
  for (const id of ids) {
    await waitFor(`v1 active on ${id}`, async () => (await plugin(id)).activeVersion === 1 ? true : undefined, 15_000)
    await waitFor(`setpoint on ${id}`, async () => lastSetpoint(id) === 10000 ? true : undefined)
    t.equal(lastSetpoint(id), 10000, `${id}: 60 kW load, 50 kW threshold -> 10 kW discharge`)
    await waitFor(`consumed at the CSS for ${id}`, async () => (await delivery(id))?.status === 'consumed' ? true : undefined)
  }
})

t.test('ems edge - a site change is in force on every edge of the site', async (t) => {
  const t0 = Date.now()
  t.equal((await putLayer('site:A', { scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: 45000 } }] } })).status, 200)
  for (const id of ids) {
    await waitFor(`15 kW on ${id}`, async () => lastSetpoint(id) === 15000 ? true : undefined, 15_000)
    t.pass(`${id} writes 15 kW after the change (${Date.now() - t0} ms)`)
    await waitFor(`v2 committed on ${id}`, async () => (await plugin(id)).activeVersion === 2 ? true : undefined, 15_000)
  }
})

t.test('ems edge - a config that breaks the runtime is rolled back and reported', async (t) => {
  const closed = await freePort() // nothing listens here
  const layer = deviceLayer(devices.get('n1')!.ports) as { modbus_devices: Array<{ connection: { port: number } }> }
  layer.modbus_devices[1]!.connection.port = closed
  t.equal((await putLayer('edge:n1', layer)).status, 200, 'valid in the cloud')
  const d = await waitFor('error at the CSS', async () => { const x = await delivery('n1'); return x?.status === 'error' ? x : undefined }, 20_000)
  t.match(d.message, /rolled back to version 2: device bms_main/)
  t.equal((await plugin('n1')).activeVersion, 2, 'the known-good version runs again')
  const before = devices.get('n1')!.battery.writes.length
  await waitFor('setpoints continue', async () => devices.get('n1')!.battery.writes.length > before + 2 ? true : undefined)
  t.equal(lastSetpoint('n1'), 15000)
  const status = await waitFor('edge status in the CSS', async () => {
    const s = await (await fetch(`${ems}/status`, { headers: admin })).json() as Array<{ edge: string, status: string, runtime?: { lastError?: string } }>
    const n1 = s.find((x) => x.edge === 'n1')
    return n1?.runtime?.lastError !== undefined ? n1 : undefined
  })
  t.equal(status.status, 'error')
  t.match(status.runtime?.lastError, /rolled back/)
  const changes = await (await fetch(`${ems}/changes`, { headers: admin })).json() as Array<{ action: string, target: string, detail: { outcome?: string, version?: number } }>
  t.ok(changes.some((c) => c.action === 'ems.outcome' && c.target === 'n1' && c.detail.outcome === 'failed' && c.detail.version === 3), 'the failed version is in the EMS audit trail')
  t.ok(changes.some((c) => c.action === 'ems.outcome' && c.target === 'n1' && c.detail.outcome === 'applied' && c.detail.version === 2))
  // After a restart (a reconnect and register), the refused version is still shown as refused.
  await ess.get('n1')?.close()
  ess.set('n1', await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'n1', props: 'site=A' }, secrets.get('n1'), { ...essCfg, SigningKey: signingKey }))
  await waitFor('n1 back', async () => ((await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json()) as Array<{ destinationID: string, online: boolean }>).find((n) => n.destinationID === 'n1')?.online === true ? true : undefined)
  // Barrier: an object published after the reconnect has arrived, so the register (the edge's
  // first message on the new connection, with its refusal) was processed before its ack.
  const n1 = ess.get('n1')
  if (n1 !== undefined) await edgeBarrier(css.restUrl, ADMIN, n1, { org: 'org1', type: 'edge', id: 'n1' }, APP, true)
  t.equal((await delivery('n1'))?.status, 'error', 'still refused after the edge re-registered')
  t.equal((await plugin('n1')).activeVersion, 2, 'and the restarted edge runs its known-good version')
})

t.test('ems edge - an edge offline during two changes gets only the latest', async (t) => {
  await ess.get('n2')?.close()
  const th = (w: number): unknown => ({ scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: w } }] } })
  t.equal((await putLayer('site:A', th(44000))).status, 200)
  t.equal((await putLayer('site:A', th(43000))).status, 200)
  const before = devices.get('n2')!.battery.writes.length
  const again = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'n2', props: 'site=A' }, secrets.get('n2'), { ...essCfg, SigningKey: signingKey })
  ess.set('n2', again)
  await waitFor('17 kW on n2', async () => lastSetpoint('n2') === 17000 ? true : undefined, 15_000)
  const seen = new Set(devices.get('n2')!.battery.writes.slice(before).map((w) => w.value))
  t.notOk(seen.has(16000), 'the intermediate threshold never ran')
  await waitFor('latest committed', async () => (await plugin('n2')).activeVersion === 4 ? true : undefined, 15_000)
})
