/** The seed's HTTP API for an HTTP-only edge: ETag/304, WebSocket notice, delta, heartbeat (and only its own config). */
import t from 'tap'
import WebSocket from 'ws'
import { ADMIN, basic, startCss, waitFor } from '../helpers/cluster.js'
import { sampleEmsConfig } from '../helpers/ems.js'

const root = t.testdir()
const css = await startCss(t, `${root}/css`)
const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
async function enroll (id: string): Promise<{ key: string, secret: string }> {
  const r = await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
  return { key: `org1/edge/${id}`, secret: ((await r.json()) as { secret: string }).secret }
}
const h1 = await enroll('h1')
const h2 = await enroll('h2')
const edge = { authorization: basic(h1) }
const TH = '/scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts'

t.test('seed API - an HTTP-only edge joins by heartbeat and fetches its config with ETags', async (t) => {
  t.equal((await fetch(`${css.restUrl}/api/v1/ems/org1/layers/org`, { method: 'PUT', headers: admin, body: JSON.stringify(sampleEmsConfig()) })).status, 200)
  const hb = await fetch(`${css.restUrl}/api/v1/edges/h1/heartbeat`, { method: 'POST', headers: { ...edge, 'content-type': 'application/json' }, body: JSON.stringify({ sync_status: 'pending', properties: { site: 'A' } }) })
  t.same(await hb.json(), { latest: 1 }, 'the first heartbeat makes it a known edge; its config is published')
  const r = await fetch(`${css.restUrl}/api/v1/edges/h1/config`, { headers: edge })
  t.equal(r.status, 200)
  const etag = r.headers.get('etag') ?? ''
  t.equal(etag, '"v1"')
  t.equal(((await r.json()) as { version: number }).version, 1)
  t.equal((await fetch(`${css.restUrl}/api/v1/edges/h1/config`, { headers: { ...edge, 'if-none-match': etag } })).status, 304)
  t.equal((await fetch(`${css.restUrl}/api/v1/edges/h1/config`, { headers: { authorization: basic(h2) } })).status, 403, 'another edge cannot read it')
  t.equal((await fetch(`${css.restUrl}/api/v1/edges/h1/config`, { headers: { authorization: basic(ADMIN) } })).status, 403, 'nor can an app key')
})

t.test('seed API - WebSocket notice, delta since a version, heartbeat with the applied version', async (t) => {
  const url = css.restUrl.replace('http:', 'ws:') + '/ws/edges/h1/notify'
  await t.rejects(new Promise((resolve, reject) => { const w = new WebSocket(url, { headers: { authorization: basic(h2) } }); w.on('open', resolve); w.on('error', reject) }), 'another edge cannot listen')
  const ws = new WebSocket(url, { headers: edge })
  const messages: Array<{ type: string, version?: number }> = []
  ws.on('message', (d) => { messages.push(JSON.parse(String(d)) as { type: string, version?: number }) })
  await waitFor('hello', async () => messages.some((m) => m.type === 'hello') ? true : undefined)
  t.teardown(() => { ws.close() })
  const t0 = Date.now()
  t.equal((await fetch(`${css.restUrl}/api/v1/ems/org1/layers/site:A`, { method: 'PUT', headers: admin, body: JSON.stringify({ scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: 45000 } }] } }) })).status, 200)
  const note = await waitFor('notice', async () => messages.find((m) => m.type === 'config_updated'))
  t.equal(note.version, 2)
  t.comment(`change to WebSocket notice: ${Date.now() - t0} ms`)
  const delta = await (await fetch(`${css.restUrl}/api/v1/edges/h1/config/delta?since=1`, { headers: edge })).json() as { from: number, to: number, changes: Array<{ path: string, from: number, to: number }> }
  t.same(delta, { from: 1, to: 2, changes: [{ path: TH, from: 50000, to: 45000 }] })
  const future = await fetch(`${css.restUrl}/api/v1/edges/h1/config/delta?since=99`, { headers: edge })
  t.equal(future.status, 409, 'a delta from a version never published is a conflict, not the full config')
  t.match(((await future.json()) as { detail: string }).detail, /never published.*latest is 2/)
  const badStatus = await fetch(`${css.restUrl}/api/v1/edges/h1/heartbeat`, { method: 'POST', headers: { ...edge, 'content-type': 'application/json' }, body: JSON.stringify({ version: 2, sync_status: 'done' }) })
  t.equal(badStatus.status, 400)
  t.match(((await badStatus.json()) as { detail: string }).detail, /sync_status: must be one of "synced", "applied", "pending", "failed", "rolled_back"/, 'the 400 names the allowed values')
  const hb = await fetch(`${css.restUrl}/api/v1/edges/h1/heartbeat`, { method: 'POST', headers: { ...edge, 'content-type': 'application/json' }, body: JSON.stringify({ version: 2, sync_status: 'applied' }) })
  t.equal(hb.status, 200)
  const st = await (await fetch(`${css.restUrl}/api/v1/ems/org1/status`, { headers: admin })).json() as Array<{ edge: string, status: string, latest: number }>
  t.match(st.find((s) => s.edge === 'h1'), { status: 'consumed', latest: 2 }, 'the applied version shows in the CSS')
})
