/**
 * The CSS dashboard in a real browser (Debian's chromium), against `syncctl sim`: 5 real ESS
 * processes with the EMS plugin driving simulated Modbus batteries. As an operator would: log in,
 * see the fleet online, edit a site layer with a wrong value and see the error at its path, fix it,
 * preview, apply, watch the edge page (and the battery's own register) show the new version in
 * force, roll back after reading the diff, pause and resume the edge's EMS plugin from the CSS,
 * upload an object, enroll a node; a user of another org sees none of it; logout ends the session
 * on the server, not just in the browser. And the browser-side guarantees: HttpOnly and
 * SameSite=Strict cookie, no change without the CSRF token.
 */
import t from 'tap'
import { launchBrowser, screenshot, watchPage, type Page } from '../../helpers/browser.js'
import { batterySetpoint, startSim } from '../../helpers/sim-process.js'
import { waitFor } from '../../helpers/cluster.js'

const browser = await launchBrowser(t)
if (browser !== undefined) {
  const sim = await startSim(t, ['--edges', '5', '--sites', '2', '--cycle-ms', '500'])
  const { rest, edges } = sim.ready
  const admin = await sim.admin()
  const basic = `Basic ${Buffer.from(`${admin.appKey}:${admin.secret}`).toString('base64')}`
  const site0 = edges.filter((e) => e.site === 'site0')
  const edge0Battery = edges.find((e) => e.edge === 'edge0')?.ports.bms_main ?? 0
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } })
  const page = await context.newPage()
  watchPage(t, page)

  const login = async (p: Page, key: string, secret: string): Promise<void> => {
    await p.goto(`${rest}/ui`)
    await p.getByLabel('App key').fill(key)
    await p.getByLabel('Secret').fill(secret)
    await p.getByRole('button', { name: 'Log in' }).click()
  }

  t.test('login: a wrong secret is refused with its code; the right one opens the fleet', async (t) => {
    await login(page, admin.appKey, 'wrong-secret')
    await page.getByRole('alert').filter({ hasText: 'SYNC_ERR_UNAUTHENTICATED' }).waitFor()
    t.pass('wrong secret: SYNC_ERR_UNAUTHENTICATED shown')
    await page.getByLabel('Secret').fill(admin.secret)
    await page.getByRole('button', { name: 'Log in' }).click()
    await page.getByRole('heading', { name: /Fleet/ }).waitFor()
    const cookies = await context.cookies(rest)
    t.equal(cookies.length, 1, 'one session cookie')
    t.ok(cookies[0]?.httpOnly, 'HttpOnly: page scripts cannot read it')
    t.equal(cookies[0]?.sameSite, 'Strict', 'SameSite=Strict: other sites cannot send it')
    t.notOk(String(await page.evaluate('document.cookie')).includes('edgesync'), 'document.cookie does not show it')
  })

  t.test('fleet: 5 edges online with their sites and config versions', async (t) => {
    await waitFor('5 online in the fleet view', async () =>
      (await page.getByTestId('count-online').textContent()) === '5' ? true : undefined, 30_000)
    t.equal(await page.locator('table.fleet tbody tr').count(), 5)
    t.equal(await page.locator('tr[data-edge="edge3"] td').nth(1).textContent(), 'site1')
    await waitFor('v1 in force everywhere', async () =>
      (await page.locator('td.version').allTextContents()).every((v) => v === 'v1 / v1') ? true : undefined, 30_000)
    t.pass('every edge runs v1, the newest')
    await page.getByLabel('Site').selectOption('site0')
    await waitFor('site filter', async () => (await page.locator('table.fleet tbody tr').count()) === 3 ? true : undefined)
    t.pass('filtered by site0: 3 edges')
    await page.getByLabel('Site').selectOption('')
    await screenshot(page, 'fleet')
  })

  t.test('CSRF: a change sent with the session cookie but without the token is refused', async (t) => {
    const r = await page.evaluate(async () => {
      const res = await fetch('/api/v1/ems/sim/edges/edge0/rollback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"version":1}' })
      return { status: res.status, body: await res.json() as { code: string } }
    })
    t.equal(r.status, 403)
    t.equal(r.body.code, 'SYNC_ERR_FORBIDDEN')
  })

  t.test('configuration: a wrong value is shown at its path; the fix is previewed and applied', async (t) => {
    await page.getByRole('link', { name: 'Configuration' }).click()
    await page.locator('select[name="layer-kind"]').selectOption('site')
    await page.locator('input[name="layer-id"]').fill('site0')
    await page.getByRole('button', { name: 'Load' }).click()
    const editor = page.locator('textarea[name="layer-json"]')
    await editor.waitFor()
    const controllers = (target: unknown): string => JSON.stringify({
      scheduler: { controllers: [{ id: 'ctrlBalancing0', parameters: { target_grid_power: target } }, { id: 'ctrlPeakShaving0', parameters: { threshold_watts: 2_000_000 } }] }
    }, null, 2)
    await editor.fill(controllers('lots'))
    await page.getByRole('button', { name: 'Preview' }).first().click()
    const problem = page.locator('li[data-path="/scheduler/controllers/0/parameters/target_grid_power"]').first()
    await problem.waitFor()
    t.match(await problem.textContent(), /must be number/, 'the server\'s error is shown at its path')
    t.ok(await page.getByRole('button', { name: 'Apply' }).first().isDisabled(), 'Apply is disabled while the preview has problems')
    await editor.fill(controllers(1_000_000))
    await page.getByRole('button', { name: 'Preview' }).first().click()
    await page.locator('.outcome[data-edge="edge0"]').waitFor()
    t.same((await page.locator('.outcome').evaluateAll((els) => els.map((e) => e.getAttribute('data-edge')))).sort(), site0.map((e) => e.edge).sort(), 'the preview names the three site0 edges')
    t.match(await page.locator('.outcome[data-edge="edge0"] table.diff').textContent(), /target_grid_power.*1000000/, 'with the per-edge diff')
    await screenshot(page, 'configuration')
    await page.getByRole('button', { name: 'Apply' }).first().click()
    await page.getByTestId('applied').waitFor()
    t.match(await page.locator('.outcome[data-edge="edge0"] h4').textContent(), /now v2/)
  })

  t.test('edge page: v2 in force (and on the battery register); roll back after reading the diff', async (t) => {
    await page.goto(`${rest}/ui#/edge/edge/edge0`)
    await waitFor('v2 in force on the edge page', async () =>
      (await page.getByTestId('active-version').textContent()) === 'v2' ? true : undefined, 30_000)
    t.pass('the edge page shows v2 in force (from the edge\'s heartbeat)')
    const sp = await waitFor('battery charging', async () => { const v = await batterySetpoint(edge0Battery); return v < -900_000 ? v : undefined }, 30_000)
    t.ok(sp < -900_000, `the battery's setpoint register says it charges at the new target (${sp} W)`)
    await waitFor('setpoint shown', async () => /-9\d\d\.\d kW|-1\d{3}\.\d kW/.test(await page.getByTestId('setpoints').textContent() ?? '') ? true : undefined, 15_000)
    t.pass('the page shows the same setpoint')
    await screenshot(page, 'edge')
    await page.getByRole('button', { name: 'Roll back to v1' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    t.match(await dialog.textContent(), /target_grid_power/, 'the confirmation shows what the rollback changes')
    await dialog.getByRole('button', { name: 'Roll back' }).click()
    await waitFor('v3 (the rollback) in force', async () =>
      (await page.getByTestId('active-version').textContent()) === 'v3' ? true : undefined, 30_000)
    await waitFor('battery back to the org default', async () => (await batterySetpoint(edge0Battery)) > -100_000 ? true : undefined, 30_000)
    t.pass('rolled back: v3 carries v1\'s content, read back from the battery register')
    t.ok(await page.getByText('Pinned by a rollback').isVisible(), 'the edge shows it is pinned')
  })

  t.test('plugin lifecycle from the CSS: pause holds a new version, resume applies it', async (t) => {
    const row = page.locator('tr[data-plugin="ems"]')
    await row.getByRole('button', { name: 'pause' }).click()
    await waitFor('paused', async () => (await row.locator('.plugin-state').textContent()) === 'paused' ? true : undefined, 20_000)
    t.pass('the edge reports its EMS plugin paused')
    await page.getByRole('button', { name: 'Release' }).click()
    await waitFor('v4 published, held', async () => (await row.locator('td').nth(2).textContent()) === '1' ? true : undefined, 20_000)
    t.equal(await page.getByTestId('active-version').textContent(), 'v3', 'paused: v4 waits, v3 stays in force')
    t.ok((await batterySetpoint(edge0Battery)) > -100_000, 'and the battery keeps v3\'s setpoint')
    await row.getByRole('button', { name: 'resume' }).click()
    await waitFor('v4 in force', async () => (await page.getByTestId('active-version').textContent()) === 'v4' ? true : undefined, 30_000)
    await waitFor('charging again', async () => (await batterySetpoint(edge0Battery)) < -900_000 ? true : undefined, 30_000)
    t.pass('resumed: v4 (the site layer again) in force, read back from the battery')
    const audit = await (await fetch(`${rest}/api/v1/audit/sim`, { headers: { authorization: basic } })).json() as Array<{ action: string, target: string }>
    t.ok(audit.some((a) => a.action === 'plugin.pause' && a.target === 'edge/edge0'), 'the pause is audited')
  })

  t.test('objects: upload a file and see its delivery', async (t) => {
    await page.getByRole('link', { name: 'Objects' }).click()
    await page.locator('input[name="upload-type"]').fill('firmware')
    await page.locator('input[name="upload-id"]').fill('fw-1')
    await page.locator('input[name="upload-destType"]').fill('edge')
    await page.locator('input[name="upload-destId"]').fill('edge1')
    await page.locator('input[name="upload-file"]').setInputFiles({ name: 'fw.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(2048, 7) })
    await page.getByRole('button', { name: 'Upload' }).click()
    await page.getByText('Stored firmware/fw-1 (2048 bytes)').waitFor()
    await page.locator('select[name="object-type"]').selectOption('firmware')
    await page.getByRole('link', { name: 'fw-1' }).click()
    // The object's own card (the list above names the destination too).
    const detail = page.locator('.card', { has: page.getByRole('heading', { name: 'firmware/fw-1' }) })
    await detail.getByRole('cell', { name: 'edge/edge1' }).waitFor()
    await screenshot(page, 'objects')
    const data = await fetch(`${rest}/api/v1/objects/sim/firmware/fw-1/data`, { headers: { authorization: basic } })
    t.equal(Buffer.from(await data.arrayBuffer()).length, 2048, 'the uploaded bytes are stored')
  })

  t.test('rollouts: per-wave progress of a staged change', async (t) => {
    const body = { id: 'soc', kind: 'ems', change: { bulk: { path: '/core_cycle/health_window_ms', value: 1200, site: 'site1' } }, waves: [{ count: 1 }, { count: 1 }] }
    const r = await fetch(`${rest}/api/v1/rollouts/sim`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    t.equal(r.status, 201)
    await page.getByRole('link', { name: 'Rollouts' }).click()
    const card = page.locator('[data-rollout="soc"]')
    await waitFor('both waves applied on the page', async () =>
      (await card.locator('.wave-consumed').allTextContents()).join(',') === '1,1' ? true : undefined, 30_000)
    t.match(await card.textContent(), /completed/, 'completed, each wave 1 of 1 applied')
    await screenshot(page, 'rollouts')
  })

  let otherSecret = ''
  t.test('admin: enroll a node and copy its ESS config; add a key of another org', async (t) => {
    await page.getByRole('link', { name: 'Admin' }).click()
    await page.locator('input[name="enroll-id"]').fill('edge9')
    await page.getByRole('button', { name: 'Enroll' }).click()
    const snippet = await page.getByTestId('enroll-snippet').textContent() ?? ''
    t.match(snippet, /DestinationID edge9/)
    t.match(snippet, /NodeSecret \S{16,}/, 'the node secret, shown once')
    t.match(snippet, /BrokerAddress mqtt:\/\/127\.0\.0\.1:\d+/)
    await screenshot(page, 'admin')
    const r = await fetch(`${rest}/api/v1/users/acme`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/json' }, body: JSON.stringify({ appKey: 'acme-admin', role: 'orgAdmin' }) })
    otherSecret = ((await r.json()) as { secret: string }).secret
    t.ok(otherSecret.length > 0)
  })

  t.test('another org\'s admin sees none of it', async (t) => {
    const other = await browser.newContext()
    const p = await other.newPage()
    watchPage(t, p)
    await login(p, 'acme-admin', otherSecret)
    await p.getByRole('heading', { name: /Fleet/ }).waitFor()
    await waitFor('counts', async () => (await p.getByTestId('count-total').textContent()) === '0' ? true : undefined)
    t.equal(await p.locator('table.fleet tbody tr').count(), 0, 'no edge of org sim')
    await p.goto(`${rest}/ui#/edge/edge/edge0`)
    await p.getByRole('alert').first().waitFor()
    t.notOk((await p.content()).includes('site0'), 'asking for sim\'s edge0 shows nothing of it')
    const direct = await p.evaluate(async () => (await fetch('/api/v1/fleet/sim')).status)
    t.equal(direct, 403, 'its session cannot read org sim through the API either')
    await other.close()
  })

  t.test('logout ends the session on the server', async (t) => {
    const before = (await context.cookies(rest))[0]
    await page.getByRole('button', { name: 'Log out' }).click()
    await page.getByRole('button', { name: 'Log in' }).waitFor()
    t.equal((await context.cookies(rest)).length, 0, 'the browser dropped the cookie')
    const replay = await fetch(`${rest}/api/v1/fleet/sim`, { headers: { cookie: `${before?.name ?? ''}=${before?.value ?? ''}` } })
    t.equal(replay.status, 401, 'the old cookie replayed by hand is refused: the session is gone')
  })
}
