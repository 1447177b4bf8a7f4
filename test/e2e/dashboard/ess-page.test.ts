/**
 * The ESS status page in a real browser, and the plugin lifecycle on the edge itself: a real CSS
 * and ESS (EMS plugin) driving simulated Modbus devices. The page shows the connection, the EMS
 * runtime's readings, the version in force and the last apply; pausing the EMS plugin there keeps
 * v1 running (the battery register does not move) and holds v2 until resumed. `syncctl plugins`
 * does the same on the ESS (--local) and through the CSS. A paused plugin stays paused across an
 * ESS restart. A user without admin rights on the edge cannot pause it.
 */
import path from 'node:path'
import t from 'tap'
import { createProgram } from '../../../src/admin/program.js'
import { launchBrowser, screenshot, watchPage } from '../../helpers/browser.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../../helpers/cluster.js'
import { sampleEmsConfig } from '../../helpers/ems.js'
import { deviceLayer, startEdgeDevices } from '../../helpers/sim-devices.js'

async function syncctl (args: string[], env: Record<string, string>): Promise<{ out: string, code: number }> {
  let out = ''
  const program = createProgram({ stdout: (s) => { out += s }, stderr: (s) => { out += s }, fetch, env })
  try {
    await program.parseAsync(['node', 'syncctl', ...args])
    return { out, code: 0 }
  } catch (x) {
    return { out: out + String((x as Error).message), code: (x as { exitCode?: number }).exitCode ?? 1 }
  }
}

const browser = await launchBrowser(t)
if (browser !== undefined) {
  const root = t.testdir()
  const css = await startCss(t, path.join(root, 'css'))
  const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
  const devices = await startEdgeDevices(t, 60_000)
  const essRoot = path.join(root, 'ess')
  const node = { org: 'org1', type: 'edge', id: 'n1', props: 'site=A' }
  const essCfg = { Plugins: 'ems', HeartbeatIntervalSeconds: 2 }
  const top = t // restarted ESSs live until the whole file ends, not the subtest
  let ess = await startEss(top, css, essRoot, node, undefined, essCfg)
  const layer = async (name: string, doc: unknown): Promise<void> => {
    const r = await fetch(`${css.restUrl}/api/v1/ems/org1/layers/${name}`, { method: 'PUT', headers: admin, body: JSON.stringify(doc) })
    if (r.status !== 200) throw new Error(`layer ${name}: ${r.status} ${await r.text()}`)
  }
  const org = sampleEmsConfig() as { core_cycle: { period_ms: number, health_window_ms?: number }, scheduler: { controllers: Array<{ enabled: boolean, parameters: Record<string, unknown> }> } }
  org.core_cycle.period_ms = 200
  org.core_cycle.health_window_ms = 600
  const peak = org.scheduler.controllers[1]
  org.scheduler.controllers[0]!.enabled = false // peak shaving alone: its threshold shows in the setpoint
  // 200 ms cycles poll with a 200 ms Modbus timeout by default: a poll slowed past it by a busy
  // CI machine would fail v1 in its health window (runtime stopped, nothing in force). 1 s here.
  const slowOk = deviceLayer(devices.ports) as { modbus_devices: Array<{ connection: Record<string, unknown> }> }
  for (const d of slowOk.modbus_devices) d.connection.timeout_ms = 1000
  await layer('edge:n1', slowOk)
  await layer('org', org)
  const lastSetpoint = (): number | undefined => devices.battery.writes.at(-1)?.value
  await waitFor('v1 drives the battery', async () => lastSetpoint() === 10_000 ? true : undefined, 20_000)

  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
  watchPage(t, page)
  const ems = page.getByTestId('ess-ems')
  const row = page.locator('tr[data-plugin="ems"]')

  t.test('the ESS page: connection, readings, version in force, last apply', async (t) => {
    await page.goto(`${ess.restUrl}/ui`)
    await page.getByLabel('App key').fill(APP.key)
    await page.getByLabel('Secret').fill(APP.secret)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByText('connected', { exact: true }).waitFor()
    await waitFor('v1 shown', async () => (await page.getByTestId('ess-active-version').textContent()) === 'v1' ? true : undefined)
    t.match(await ems.textContent(), /Grid60\.0 kW/, 'the grid meter\'s 60 kW, as the runtime polled it')
    t.match(await ems.textContent(), /State of charge80 %/)
    t.match(await page.getByTestId('ess-last-apply').textContent(), /v1 applied/)
    t.match(await page.locator('table').last().textContent(), /ems-config/, 'the objects held, with the config')
    await screenshot(page, 'ess')
  })

  t.test('pause on the page: v1 keeps running, v2 waits; resume applies it', async (t) => {
    await row.getByRole('button', { name: 'pause' }).click()
    await waitFor('paused', async () => (await row.locator('.plugin-state').textContent()) === 'paused' ? true : undefined)
    peak!.parameters.threshold_watts = 40_000
    await layer('org', org)
    await waitFor('v2 waiting', async () => (await row.locator('td').nth(2).textContent()) === '1' ? true : undefined, 15_000)
    await new Promise((resolve) => setTimeout(resolve, 1000)) // a few core cycles
    t.equal(lastSetpoint(), 10_000, 'the battery still gets v1\'s setpoint')
    t.equal(await page.getByTestId('ess-active-version').textContent(), 'v1')
    await row.getByRole('button', { name: 'resume' }).click()
    await waitFor('v2 in force', async () => (await page.getByTestId('ess-active-version').textContent()) === 'v2' ? true : undefined, 15_000)
    await waitFor('v2 setpoint', async () => lastSetpoint() === 20_000 ? true : undefined)
    t.pass('resumed: 60 kW load, 40 kW threshold -> 20 kW discharge')
  })

  t.test('syncctl plugins on the ESS (--local) and through the CSS; paused survives a restart', async (t) => {
    const local = { SYNC_URL: ess.restUrl, SYNC_KEY: APP.key, SYNC_SECRET: APP.secret }
    const cloud = { SYNC_URL: css.restUrl, SYNC_KEY: ADMIN.key, SYNC_SECRET: ADMIN.secret }
    t.match((await syncctl(['plugins', 'pause', '--local', 'ems'], local)).out, /ems: paused/)
    t.match((await syncctl(['plugins', 'list', '--local'], local)).out, /ems\s+paused\s+0\s+2/)
    t.equal((await syncctl(['plugins', 'pause', '--local', 'nope'], local)).code, 3, 'an unknown plugin: not found (3)')
    t.equal((await syncctl(['plugins', 'pause', 'org1', 'edge'], cloud)).code, 2, 'missing arguments: usage (2)')
    await ess.close()
    ess = await startEss(top, css, essRoot, node, undefined, essCfg)
    const h = await (await fetch(`${ess.restUrl}/api/v1/plugins`, { headers: { authorization: basic(APP) } })).json() as { ems: { state: string, activeVersion: number } }
    t.equal(h.ems.state, 'paused', 'still paused after the ESS restarted')
    t.equal(h.ems.activeVersion, 2, 'and running the config it ran')
    const sent = await syncctl(['plugins', 'resume', 'org1', 'edge', 'n1', 'ems'], cloud)
    t.match(sent.out, /resume sent to org1\/edge\/n1 \(online\)/)
    await waitFor('resumed by the CSS command', async () =>
      /ems\s+running/.test((await syncctl(['plugins', 'list', 'org1', 'edge', 'n1'], cloud)).out) ? true : undefined, 15_000)
    t.pass('the CSS shows the state the edge reported after the command')
  })

  t.test('a plain user may see the edge\'s plugins but not pause them', async (t) => {
    const r = await fetch(`${css.restUrl}/api/v1/users/org1`, { method: 'POST', headers: admin, body: JSON.stringify({ appKey: 'viewer', role: 'user' }) })
    const secret = ((await r.json()) as { secret: string }).secret
    const seen = await fetch(`${css.restUrl}/api/v1/fleet/org1/edge/n1`, { headers: { authorization: basic({ key: 'viewer', secret }) } })
    t.equal(((await seen.json()) as { plugins: { ems: { state: string } } }).plugins.ems.state, 'running', 'the user sees the plugin\'s state')
    const res = await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/n1/plugins/ems/pause`, { method: 'POST', headers: { authorization: basic({ key: 'viewer', secret }) } })
    t.equal(res.status, 403)
    const local = await fetch(`${ess.restUrl}/api/v1/plugins/ems/pause`, { method: 'POST', headers: { authorization: basic({ key: 'viewer', secret }) } })
    t.equal(local.status, 401, 'a CSS key is not a key of the edge')
  })
}
