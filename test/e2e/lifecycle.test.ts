/** Object lifecycle: expiration, activation time, delete-on-delivery, expected consumers, noData, link, tombstone grace period. */
import t from 'tap'
import { edgeBarrier } from '../helpers/barrier.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'

const root = t.testdir()
const css = await startCss(t, `${root}/css`, { DeletedRetentionSeconds: 2 })
const n1 = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'n1' })
const n2 = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'n2' })
const admin = { authorization: basic(ADMIN) }
const app = { authorization: basic(APP) }
const soon = (ms: number): string => new Date(Date.now() + ms).toISOString()

async function put (id: string, meta: Record<string, unknown>, data?: string): Promise<Response> {
  return await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}`, {
    method: 'PUT',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ meta: { objectID: id, objectType: 'conf', destinationType: 'edge', ...meta }, ...(data === undefined ? {} : { data: Buffer.from(data).toString('base64') }) })
  })
}
async function onEdge (ess: typeof n1, id: string): Promise<{ status: string, instanceID: number, link?: string, deleted?: boolean } | undefined> {
  const r = await fetch(`${ess.restUrl}/api/v1/objects/conf/${id}`, { headers: app })
  return r.status === 200 ? await r.json() as { status: string, instanceID: number } : undefined
}
async function destinations (id: string): Promise<Array<{ destinationID: string, status: string, detail: string, times: Record<string, string> }>> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}/destinations`, { headers: admin })
  return r.ok ? await r.json() as Array<{ destinationID: string, status: string, detail: string, times: Record<string, string> }> : []
}
const consume = async (ess: typeof n1, id: string): Promise<number> => (await fetch(`${ess.restUrl}/api/v1/objects/conf/${id}/consumed`, { method: 'PUT', headers: app })).status

await waitFor('2 nodes', async () => ((await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json()) as unknown[]).length === 2 ? true : undefined)

t.test('lifecycle - an expired object disappears from the CSS and from every edge', async (t) => {
  t.equal((await put('exp', { expiration: soon(1500) }, 'x')).status, 204)
  await waitFor('exp on both edges', async () => (await onEdge(n1, 'exp')) !== undefined && (await onEdge(n2, 'exp')) !== undefined ? true : undefined)
  for (const ess of [n1, n2]) {
    const o = await waitFor('exp deleted on the edge', async () => { const m = await onEdge(ess, 'exp'); return m?.deleted === true ? m : undefined }, 10_000)
    t.equal(o.status, 'objdeleted', 'the edge was told and shows it deleted to its apps')
  }
  await waitFor('exp gone from the CSS', async () => await css.store.objects.get({ orgId: 'org1', objectType: 'conf', objectId: 'exp' }) === undefined ? true : undefined, 10_000)
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/exp`, { headers: admin })).status, 404)
  t.equal((await put('past', { expiration: new Date(Date.now() - 1000).toISOString() })).status, 400, 'an expiration in the past is refused')
})

t.test('lifecycle - an object with a future activation time is delivered only once active', async (t) => {
  const at = Date.now() + 4000
  t.equal((await put('act', { activationTime: new Date(at).toISOString() }, 'y')).status, 204)
  await edgeBarrier(css.restUrl, ADMIN, n1, { org: 'org1', type: 'edge', id: 'n1' }, APP)
  t.ok(Date.now() < at, 'the barrier arrived before the activation time (else this check proves nothing)')
  t.equal(await onEdge(n1, 'act'), undefined, 'not on the edge before its activation time')
  t.ok((await destinations('act')).every((d) => d.status === 'pending' && d.detail === 'inactive'), 'pending, inactive')
  await waitFor('act on the edge', async () => await onEdge(n1, 'act'), 10_000)
  const d = await waitFor('delivered at the CSS', async () => (await destinations('act')).find((x) => x.destinationID === 'n1' && x.status === 'delivered'))
  t.ok(Date.parse(d?.times.delivered ?? '') >= at, 'delivered after the activation time')
})

t.test('lifecycle - delete-on-delivery removes the object once every destination consumed', async (t) => {
  t.equal((await put('once', { autodelete: true }, 'z')).status, 204)
  await waitFor('once on both', async () => (await onEdge(n1, 'once')) !== undefined && (await onEdge(n2, 'once')) !== undefined ? true : undefined)
  t.equal(await consume(n1, 'once'), 204)
  // Barrier: n1's consumed ack has been processed by the CSS.
  await waitFor('n1 consumed at the CSS', async () => (await destinations('once')).find((d) => d.destinationID === 'n1' && d.status === 'consumed'))
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/once`, { headers: admin })).status, 200, 'still there while one destination has not consumed')
  t.equal(await consume(n2, 'once'), 204)
  await waitFor('once gone from the CSS', async () => await css.store.objects.get({ orgId: 'org1', objectType: 'conf', objectId: 'once' }) === undefined ? true : undefined, 10_000)
  t.equal((await onEdge(n2, 'once'))?.deleted, true, 'edges were told')
})

t.test('lifecycle - expected consumers: consumed only after that many apps marked it', async (t) => {
  t.equal((await put('two', { destinationID: 'n1', consumers: 2 }, 'w')).status, 204)
  await waitFor('two on n1', async () => await onEdge(n1, 'two'))
  t.equal(await consume(n1, 'two'), 204)
  // The mark is counted inside the request: its answer is the barrier.
  t.equal((await onEdge(n1, 'two'))?.status, 'completelyReceived', 'one of two consumers: not consumed yet')
  t.equal(await consume(n1, 'two'), 204)
  t.equal((await onEdge(n1, 'two'))?.status, 'objconsumed')
  await waitFor('consumed at the CSS', async () => (await destinations('two'))[0]?.status === 'consumed' ? true : undefined)
})

t.test('lifecycle - noData and link objects travel as metadata only', async (t) => {
  t.equal((await put('notice', { destinationID: 'n1', noData: true })).status, 204)
  t.equal((await put('ptr', { destinationID: 'n1', link: 'https://downloads.invalid/fw-2.bin' })).status, 204)
  await waitFor('both on n1', async () => (await onEdge(n1, 'notice')) !== undefined && (await onEdge(n1, 'ptr')) !== undefined ? true : undefined)
  t.equal((await fetch(`${n1.restUrl}/api/v1/objects/conf/notice/data`, { headers: app })).status, 404, 'no data for a noData object')
  t.equal((await onEdge(n1, 'ptr'))?.link, 'https://downloads.invalid/fw-2.bin', 'the link is passed on, never fetched')
})

t.test('lifecycle - a delete some destination never confirms is removed after the grace period', async (t) => {
  const gone = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'n9' })
  await waitFor('n9 registered', async () => ((await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json()) as unknown[]).length === 3 ? true : undefined)
  await gone.close()
  t.equal((await put('orphan', { destinationID: 'n9' }, 'o')).status, 204)
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/conf/orphan`, { method: 'DELETE', headers: admin })).status, 204)
  const key = { orgId: 'org1', objectType: 'conf', objectId: 'orphan' }
  t.equal((await css.store.objects.get(key))?.meta.deleted, true, 'a tombstone waits for n9')
  await waitFor('tombstone removed after the grace period', async () => await css.store.objects.get(key) === undefined ? true : undefined, 10_000)
  t.pass('removed')
})
