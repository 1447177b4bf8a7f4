/** EMS configuration in the cloud: layers, effective configs with provenance, validation, bulk changes, history, rollback, status. */
import t from 'tap'
import { edgeBarrier } from '../helpers/barrier.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { sampleEmsConfig } from '../helpers/ems.js'

const root = t.testdir()
const css = await startCss(t, `${root}/css`)
const edges = new Map<string, Awaited<ReturnType<typeof startEss>>>()
for (const [id, site] of [['n1', 'A'], ['n2', 'A'], ['n3', 'B']] as const) edges.set(id, await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id, props: `site=${site}` }))
const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
const ems = `${css.restUrl}/api/v1/ems/org1`
await waitFor('3 nodes', async () => ((await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json()) as unknown[]).length === 3 ? true : undefined)

async function onEdge (id: string): Promise<{ version: number, scheduler: { controllers: Array<{ parameters: { threshold_watts?: number } }> } } | undefined> {
  const r = await fetch(`${edges.get(id)?.restUrl ?? ''}/api/v1/objects/ems-config/${id}/data`, { headers: { authorization: basic(APP) } })
  return r.status === 200 ? await r.json() as { version: number, scheduler: { controllers: Array<{ parameters: { threshold_watts?: number } }> } } : undefined
}
const threshold = (c: Awaited<ReturnType<typeof onEdge>>): number | undefined => c?.scheduler.controllers[1]?.parameters.threshold_watts
/** Anything the CSS published to this edge before has arrived once this returns. */
async function barrierTo (id: string): Promise<void> {
  const edge = edges.get(id)
  if (edge !== undefined) await edgeBarrier(css.restUrl, ADMIN, edge, { org: 'org1', type: 'edge', id }, APP)
}
const TH = '/scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts'

t.test('ems - the org layer reaches every edge as a validated, versioned effective config', async (t) => {
  const r = await fetch(`${ems}/layers/org`, { method: 'PUT', headers: admin, body: JSON.stringify(sampleEmsConfig()) })
  t.equal(r.status, 200)
  const out = await r.json() as { published: Array<{ edge: string, version: number }> }
  t.same(out.published.map((p) => [p.edge, p.version]).sort(), [['n1', 1], ['n2', 1], ['n3', 1]])
  for (const id of ['n1', 'n2', 'n3']) {
    const c = await waitFor(`v1 on ${id}`, async () => await onEdge(id))
    t.equal(c.version, 1)
    t.equal(threshold(c), 50000)
  }
})

t.test('ems - a site override changes only that site\'s edges, with provenance', async (t) => {
  const r = await fetch(`${ems}/layers/site:A`, { method: 'PUT', headers: admin, body: JSON.stringify({ scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: 45000 } }] } }) })
  t.equal(r.status, 200)
  for (const id of ['n1', 'n2']) {
    const c = await waitFor(`v2 on ${id}`, async () => { const x = await onEdge(id); return x?.version === 2 ? x : undefined })
    t.equal(threshold(c), 45000, `${id} runs the site's threshold`)
  }
  t.equal((await onEdge('n3'))?.version, 1, 'site B untouched')
  const eff = await (await fetch(`${ems}/edges/n1/effective`, { headers: admin })).json() as { provenance: Record<string, string> }
  t.equal(eff.provenance[TH], 'site:A')
  t.equal(eff.provenance['/core_cycle/period_ms'], 'org')
})

t.test('ems - an invalid change is refused with its errors and publishes nothing', async (t) => {
  const r = await fetch(`${ems}/layers/edge:n3`, { method: 'PUT', headers: admin, body: JSON.stringify({ core_cycle: { period_ms: 10 }, alarms: [{ id: 'x', channel: 'ghost/Soc', condition: '<', threshold: 1, severity: 'info' }] }) })
  t.equal(r.status, 400)
  const p = await r.json() as { code: string, errors: Array<{ edge: string, problems: Array<{ path: string, rule: string }> }> }
  t.equal(p.code, 'SYNC_ERR_VALIDATION')
  t.equal(p.errors[0]?.edge, 'n3')
  t.same(p.errors[0]?.problems.map((x) => x.path), ['/core_cycle/period_ms', '/alarms/1/channel'], 'shape and rule errors in one answer, shape first')
  t.equal((await fetch(`${ems}/layers/edge:n3`, { headers: admin })).status, 404, 'the layer was not stored')
  await barrierTo('n3')
  t.equal((await onEdge('n3'))?.version, 1)
})

t.test('ems - bulk: preview the per-edge diff, then apply', async (t) => {
  const body = { path: TH, value: 42000, selector: { site: 'B' } }
  const pre = await (await fetch(`${ems}/bulk`, { method: 'POST', headers: admin, body: JSON.stringify(body) })).json() as { edges: Array<{ edge: string, changes: Array<{ path: string, from: number, to: number }>, version?: number }> }
  t.same(pre.edges, [{ edge: 'n3', changes: [{ path: TH, from: 50000, to: 42000 }] }], 'preview only')
  await barrierTo('n3')
  t.equal((await onEdge('n3'))?.version, 1, 'nothing published by a preview')
  const done = await (await fetch(`${ems}/bulk`, { method: 'POST', headers: admin, body: JSON.stringify({ ...body, apply: true }) })).json() as { edges: Array<{ edge: string, version?: number }> }
  t.equal(done.edges[0]?.version, 2)
  const c = await waitFor('v2 on n3', async () => { const x = await onEdge('n3'); return x?.version === 2 ? x : undefined })
  t.equal(threshold(c), 42000)
})

t.test('ems - history, rollback as a new version, status and audit', async (t) => {
  t.same((await (await fetch(`${ems}/edges/n1/history`, { headers: admin })).json() as Array<{ version: number }>).map((h) => h.version), [2, 1])
  const rb = await (await fetch(`${ems}/edges/n1/rollback`, { method: 'POST', headers: admin, body: JSON.stringify({ version: 1 }) })).json() as { version: number }
  t.equal(rb.version, 3)
  const c = await waitFor('v3 on n1', async () => { const x = await onEdge('n1'); return x?.version === 3 ? x : undefined })
  t.equal(threshold(c), 50000, 'the content of version 1')
  const status = await waitFor('all delivered', async () => {
    const s = await (await fetch(`${ems}/status`, { headers: admin })).json() as Array<{ edge: string, latest: number, status: string, behindSince?: string }>
    return s.length === 3 && s.every((x) => x.status === 'delivered' && x.behindSince === undefined) ? s : undefined
  })
  t.same(status.map((s) => [s.edge, s.latest]).sort(), [['n1', 3], ['n2', 2], ['n3', 2]])
  const audit = await (await fetch(`${css.restUrl}/api/v1/audit/org1`, { headers: admin })).json() as Array<{ action: string, target: string, detail?: { diff?: Array<{ path: string }> } }>
  const siteChange = audit.find((a) => a.action === 'ems.layer.set' && a.target === 'site:A')
  t.ok(siteChange?.detail?.diff?.some((d) => d.path === TH), 'the audit entry carries the diff')
  t.ok(audit.some((a) => a.action === 'ems.rollback'))
})

t.test('ems - syncctl ems: validate, layer-get, effective --provenance, bulk preview, history, status, changes', async (t) => {
  const { createProgram } = await import('../../src/admin/program.js')
  const { writeFile } = await import('node:fs/promises')
  const env = { SYNC_URL: css.restUrl, SYNC_KEY: ADMIN.key, SYNC_SECRET: ADMIN.secret }
  const run = async (...args: string[]): Promise<{ out: string, code: number }> => {
    let out = ''
    try {
      await createProgram({ stdout: (s) => { out += s }, stderr: () => {}, fetch, env }).parseAsync(['node', 'syncctl', ...args])
      return { out, code: 0 }
    } catch (e) {
      return { out, code: (e as { exitCode?: number }).exitCode ?? 1 }
    }
  }
  const good = `${root}/good.json`
  const bad = `${root}/bad.json`
  await writeFile(good, JSON.stringify(sampleEmsConfig()))
  await writeFile(bad, JSON.stringify({ ...sampleEmsConfig(), alarms: [{ id: 'a', channel: 'nope/X', condition: '<', threshold: 1, severity: 'info' }] }))
  t.equal((await run('ems', 'validate', good)).out, 'valid\n')
  const b = await run('ems', 'validate', bad)
  t.equal(b.code, 5)
  t.match(b.out, /\/alarms\/0\/channel\s+device-exists/)
  t.match((await run('ems', 'layer-get', 'org1', 'site:A')).out, /threshold_watts/)
  t.match((await run('ems', 'effective', 'org1', 'n1', '--provenance')).out, /\/core_cycle\/period_ms\s+org/)
  const pre = await run('ems', 'bulk', 'org1', TH, '41000', '--site', 'A')
  t.match(pre.out, /n1\n {2}\/scheduler\/controllers\/ctrlPeakShaving0\/parameters\/threshold_watts: 50000 -> 41000/)
  t.match(pre.out, /preview: nothing published/)
  t.match((await run('ems', 'history', 'org1', 'n1')).out, /^VERSION/)
  t.match((await run('ems', 'status', 'org1')).out, /^EDGE\s+SITE\s+LATEST/)
  t.match((await run('ems', 'changes', 'org1')).out, /ems\.layer\.set/)
})

t.test('ems - a rollback pins the edge: an unrelated change waits for its release (preview says so)', async (t) => {
  // n1 runs v3, the content of v1 (threshold 50000), while its site layer says 45000.
  type Outcome = { edge: string, version?: number, changes: Array<{ path: string }>, pinned?: { version: number } }
  const st = await (await fetch(`${ems}/status`, { headers: admin })).json() as Array<{ edge: string, pinned?: { version: number } }>
  t.equal(st.find((s) => s.edge === 'n1')?.pinned?.version, 3, 'status shows the pin')
  const edit = JSON.stringify({ alarms: [{ id: 'pin_test', channel: 'bms_main/Soc', condition: '<', threshold: 5, severity: 'info' }] })
  const pre = await (await fetch(`${ems}/layers/org?preview=true`, { method: 'PATCH', headers: admin, body: edit })).json() as { preview: Outcome[] }
  const n1 = pre.preview.find((o) => o.edge === 'n1')
  t.equal(n1?.pinned?.version, 3, 'the preview shows the rolled-back edge as pinned')
  t.ok(n1?.changes.some((c) => c.path.startsWith('/alarms')), 'with what would reach it on release')
  const done = await (await fetch(`${ems}/layers/org`, { method: 'PATCH', headers: admin, body: edit })).json() as { published: Outcome[] }
  t.equal(done.published.find((o) => o.edge === 'n1')?.version, undefined, 'nothing published to the pinned edge')
  t.ok((done.published.find((o) => o.edge === 'n2')?.version ?? 0) > 2, 'the other edges get the change')
  await barrierTo('n1')
  const kept = await onEdge('n1')
  t.equal(kept?.version, 3)
  t.equal(threshold(kept), 50000, 'the rollback holds')
  const auth = { authorization: basic(ADMIN) }
  const rel = await (await fetch(`${ems}/edges/n1/release`, { method: 'POST', headers: auth })).json() as Outcome
  t.equal(rel.version, 4)
  t.ok(rel.changes.some((c) => c.path === TH), 'release brings the layers\' values back')
  const after = await waitFor('v4 on n1', async () => { const x = await onEdge('n1'); return x?.version === 4 ? x : undefined })
  t.equal(threshold(after), 45000)
  const again = await fetch(`${ems}/edges/n1/release`, { method: 'POST', headers: auth })
  t.equal(again.status, 409, 'an edge that is not pinned cannot be released')
})

t.test('ems - a layer that reaches no edge yet says why', async (t) => {
  const r = await fetch(`${css.restUrl}/api/v1/ems/org9/layers/org`, { method: 'PUT', headers: admin, body: JSON.stringify(sampleEmsConfig()) })
  const body = await r.json() as { published: unknown[], note?: string }
  t.same(body.published, [])
  t.match(body.note, /registered|heartbeat/)
})
