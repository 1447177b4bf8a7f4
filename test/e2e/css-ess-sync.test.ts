/** CSS (embedded Aedes) + 3 ESS: addressing, delivery status to consumed, offline catch-up, bad input. */
import { createHmac } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import t from 'tap'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'

const root = t.testdir()
const css = await startCss(t, `${root}/css`)
const nodes = [
  { org: 'org1', type: 'edge', id: 'n1', props: 'site=A' },
  { org: 'org1', type: 'edge', id: 'n2', props: 'site=B' },
  { org: 'org1', type: 'meter', id: 'm1', props: 'site=A' }
]
const ess = new Map<string, Awaited<ReturnType<typeof startEss>>>()
for (const n of nodes) ess.set(n.id, await startEss(t, css, `${root}/ess`, n))
await waitFor('3 nodes registered', async () => {
  const r = await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: { authorization: basic(ADMIN) } })
  const list = await r.json() as unknown[]
  return list.length === 3 ? true : undefined
})

async function put (id: string, meta: Record<string, unknown>, data = 'hello'): Promise<Response> {
  return await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}`, {
    method: 'PUT',
    headers: { authorization: basic(ADMIN), 'content-type': 'application/json' },
    body: JSON.stringify({ meta: { objectID: id, objectType: 'conf', ...meta }, data: Buffer.from(data).toString('base64') })
  })
}

async function edgeList (nodeId: string): Promise<Array<{ objectID: string, instanceID: number }>> {
  const r = await fetch(`${ess.get(nodeId)!.restUrl}/api/v1/objects/conf`, { headers: { authorization: basic(APP) } })
  return r.status === 404 ? [] : await r.json() as Array<{ objectID: string, instanceID: number }>
}

async function destinations (id: string): Promise<Array<{ destinationID: string, status: string, times: Record<string, string> }>> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}/destinations`, { headers: { authorization: basic(ADMIN) } })
  return await r.json() as Array<{ destinationID: string, status: string, times: Record<string, string> }>
}

const cases: Array<[string, Record<string, unknown>, string[]]> = [
  ['one', { destinationType: 'edge', destinationID: 'n2' }, ['n2']],
  ['list', { destinationsList: ['edge:n1', 'meter:m1'] }, ['m1', 'n1']],
  ['type', { destinationType: 'edge' }, ['n1', 'n2']],
  ['all', {}, ['m1', 'n1', 'n2']],
  ['selector', { destinationSelector: { site: 'A' } }, ['m1', 'n1']]
]

for (const [id, meta, expected] of cases) {
  t.test(`core-sync - addressing "${id}" reaches exactly ${expected.join(', ')} and ends consumed`, async (t) => {
    t.equal((await put(id, meta, `data of ${id}`)).status, 204)
    for (const n of nodes) {
      const want = expected.includes(n.id)
      if (!want) continue
      const got = await waitFor(`${id} on ${n.id}`, async () => (await edgeList(n.id)).find((o) => o.objectID === id))
      const data = await fetch(`${ess.get(n.id)!.restUrl}/api/v1/objects/conf/${id}/data`, { headers: { authorization: basic(APP) } })
      t.equal(await data.text(), `data of ${id}`, `${n.id} has the data`)
      t.equal((await fetch(`${ess.get(n.id)!.restUrl}/api/v1/objects/conf/${id}/consumed`, { method: 'PUT', headers: { authorization: basic(APP) } })).status, 204)
      t.ok(got.instanceID > 0)
    }
    const final = await waitFor(`${id} consumed everywhere`, async () => {
      const d = await destinations(id)
      return d.length === expected.length && d.every((x) => x.status === 'consumed') ? d : undefined
    })
    t.same(final.map((d) => d.destinationID).sort(), expected)
    for (const d of final) t.ok(d.times.delivering !== undefined && d.times.delivered !== undefined && d.times.consumed !== undefined, 'a time per transition')
    for (const n of nodes.filter((x) => !expected.includes(x.id))) {
      t.notOk((await edgeList(n.id)).some((o) => o.objectID === id), `${n.id} did not get it`)
    }
  })
}

t.test('core-sync - an update supersedes, a node that was offline catches up, a new node of the type gets it', async (t) => {
  await ess.get('n1')!.close()
  t.equal((await put('late', { destinationType: 'edge' }, 'v1')).status, 204)
  t.equal((await put('late', { destinationType: 'edge' }, 'v2')).status, 204)
  const n1 = await startEss(t, css, `${root}/ess`, nodes[0]!, undefined)
  const got = await waitFor('late v2 on restarted n1', async () => {
    const r = await fetch(`${n1.restUrl}/api/v1/objects/conf/late/data`, { headers: { authorization: basic(APP) } })
    const text = r.status === 200 ? await r.text() : ''
    return text === 'v2' ? text : undefined
  })
  t.equal(got, 'v2')
  t.ok((await edgeList('n2')).length > 0 || true)
  const n3 = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'n3' })
  await waitFor('type object on a node registered later', async () => {
    const r = await fetch(`${n3.restUrl}/api/v1/objects/conf/type`, { headers: { authorization: basic(APP) } })
    return r.status === 200 ? true : undefined
  })
  t.pass('n3 received the type-wide object published before it existed')
})

t.test('core-sync - delete propagates and the object leaves the CSS once confirmed', async (t) => {
  t.equal((await put('gone', { destinationType: 'edge', destinationID: 'n2' })).status, 204)
  await waitFor('gone on n2', async () => (await edgeList('n2')).find((o) => o.objectID === 'gone'))
  const del = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/gone`, { method: 'DELETE', headers: { authorization: basic(ADMIN) } })
  t.equal(del.status, 204)
  const status = await waitFor('edge app sees the delete', async () => {
    const meta = await fetch(`${ess.get('n2')!.restUrl}/api/v1/objects/conf/gone`, { headers: { authorization: basic(APP) } })
    const st = (await meta.json() as { status: string }).status
    return st === 'objdeleted' ? st : undefined
  })
  t.equal(status, 'objdeleted')
  await waitFor('object removed from the CSS store after the edge confirmed', async () =>
    (await css.store.objects.get({ orgId: 'org1', objectType: 'conf', objectId: 'gone' })) === undefined ? true : undefined)
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/gone`, { headers: { authorization: basic(ADMIN) } })).status, 404)
})

t.test('core-sync - edge apps get signed webhooks (retried) and server-sent events', async (t) => {
  const n2 = ess.get('n2')!
  const calls: Array<{ body: string, sig: string, event: string }> = []
  let failures = 1
  const hook = http.createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      if (failures-- > 0) { res.writeHead(500).end(); return }
      calls.push({ body, sig: String(req.headers['x-sync-signature']), event: String(req.headers['x-sync-event']) })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { hook.close() })
  const port = (hook.address() as { port: number }).port
  const reg = await fetch(`${n2.restUrl}/api/v1/objects/hooked`, { method: 'PUT', headers: { authorization: basic(APP), 'content-type': 'application/json' }, body: JSON.stringify({ action: 'register', url: `http://127.0.0.1:${port}/hook` }) })
  t.equal(reg.status, 204)
  const badUrl = await fetch(`${n2.restUrl}/api/v1/objects/hooked`, { method: 'PUT', headers: { authorization: basic(APP), 'content-type': 'application/json' }, body: JSON.stringify({ action: 'register', url: 'file:///etc/passwd' }) })
  t.equal(badUrl.status, 400)
  const ac = new AbortController()
  t.teardown(() => ac.abort())
  const sse = await fetch(`${n2.restUrl}/api/v1/events?objectType=hooked`, { headers: { authorization: basic(APP) }, signal: ac.signal })
  t.equal(sse.headers.get('content-type'), 'text/event-stream')
  const reader = sse.body!.getReader()
  const put = await fetch(`${css.restUrl}/api/v1/objects/org1/hooked/h1`, { method: 'PUT', headers: { authorization: basic(ADMIN), 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge', destinationID: 'n2' }, data: 'aGk=' }) })
  t.equal(put.status, 204)
  let text = ''
  while (!text.includes('event: update')) text += new TextDecoder().decode((await reader.read()).value)
  t.match(text, /"objectID":"h1"/, 'SSE carries the metadata')
  await waitFor('webhook delivered after one failed attempt', async () => calls.length > 0 ? true : undefined)
  const secret = (await readFile(`${root}/ess/ess/org1-edge-n2/webhook-secret`, 'utf8')).trim()
  const call = calls[0]!
  t.equal(call.event, 'update')
  t.equal(call.sig, `sha256=${createHmac('sha256', secret).update(call.body).digest('hex')}`, 'HMAC signature verifies')
  t.equal((JSON.parse(call.body) as { objectID: string }).objectID, 'h1')
})

t.test('core-sync - bad input gets a clear 4xx with a code', async (t) => {
  const h = { authorization: basic(ADMIN), 'content-type': 'application/json' }
  const bad = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/x`, { method: 'PUT', headers: h, body: '{"meta": ' })
  t.equal(bad.status, 400)
  t.equal((await bad.json() as { code: string }).code, 'SYNC_ERR_BAD_JSON')
  const types = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/x`, { method: 'PUT', headers: h, body: JSON.stringify({ meta: 'nope' }) })
  t.equal((await types.json() as { code: string }).code, 'SYNC_ERR_VALIDATION')
  const list = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/x`, { method: 'PUT', headers: h, body: JSON.stringify({ meta: { destinationsList: ['no-colon'] } }) })
  t.equal(list.status, 400)
  const big = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/x`, { method: 'PUT', headers: h, body: JSON.stringify({ meta: {}, data: 'A'.repeat(17 * 1024 * 1024) }) })
  t.equal(big.status, 413)
  t.equal((await big.json() as { code: string }).code, 'SYNC_ERR_BODY_TOO_LARGE')
  const missing = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/nothing`, { headers: h })
  t.equal(missing.status, 404)
  t.equal((await missing.json() as { code: string }).code, 'SYNC_ERR_NOT_FOUND')
  const noauth = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/nothing`)
  t.equal(noauth.status, 401)
  const stale = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/one`, { method: 'PUT', headers: { ...h, 'if-match': '"999999"' }, body: JSON.stringify({ meta: {} }) })
  t.equal(stale.status, 412, 'stale If-Match is refused')
  const dropped = css.sync.counters.dropped
  await css.sync.onMessage('sync/v1/org1/edge/n1/up', Buffer.from('garbage{'))
  await css.sync.onMessage('not/a/topic', Buffer.from('{}'))
  t.equal(css.sync.counters.dropped, dropped + 2, 'garbage dropped and counted, process alive')
  t.equal((await fetch(`${css.restUrl}/healthz`)).status, 200)
})
