/** Edge to cloud: objects created by edge apps reach the CSS (inline or pulled in chunks), CSS apps consume them, the edge sees it. */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import t from 'tap'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { generateBytes } from '../helpers/bytes.js'

const SIZE = 50 * 1024 * 1024
const root = t.testdir()
const css = await startCss(t, `${root}/css`, { ChunkSize: 1048576 })
const edgeCfg = { MaxInlineDataSize: 4096, ChunkSize: 1048576 }
const n1 = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'meter', id: 'm1' }, undefined, edgeCfg)
const n2 = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'meter', id: 'm2' }, undefined, edgeCfg)
const admin = { authorization: basic(ADMIN) }
const app = { authorization: basic(APP) }

async function hashOf (stream: AsyncIterable<Uint8Array>): Promise<string> {
  const h = createHash('sha256')
  for await (const c of stream) h.update(c)
  return h.digest('hex')
}
async function edgePut (ess: typeof n1, id: string, meta: Record<string, unknown>, data?: string): Promise<number> {
  const r = await fetch(`${ess.restUrl}/api/v1/objects/report/${id}`, { method: 'PUT', headers: { ...app, 'content-type': 'application/json' }, body: JSON.stringify({ meta, ...(data === undefined ? {} : { data: Buffer.from(data).toString('base64') }) }) })
  return r.status
}
async function cloudList (): Promise<Array<{ objectID: string, status: string, originID: string, objectSize: number }>> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/report`, { headers: admin })
  return r.status === 200 ? await r.json() as Array<{ objectID: string, status: string, originID: string, objectSize: number }> : []
}
async function edgeView (ess: typeof n1, id: string): Promise<string | undefined> {
  const r = await fetch(`${ess.restUrl}/api/v1/objects/report/${id}/destinations`, { headers: app })
  return r.status === 200 ? ((await r.json()) as Array<{ status: string }>)[0]?.status : undefined
}

t.test('edge to cloud - a small object travels inline; a CSS app consumes it and the edge sees it', async (t) => {
  t.equal(await edgePut(n1, 'r1', { description: 'daily report' }, 'kWh 42'), 204)
  const o = await waitFor('r1 on the CSS', async () => (await cloudList()).find((x) => x.objectID === 'r1'))
  t.equal(o.status, 'completelyReceived')
  t.equal(o.originID, 'm1', 'the origin is the authenticated edge')
  t.equal(await (await fetch(`${css.restUrl}/api/v1/objects/org1/report/r1/data`, { headers: admin })).text(), 'kWh 42')
  await waitFor('delivered as the edge sees it', async () => await edgeView(n1, 'r1') === 'delivered' ? true : undefined)
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/report/r1/consumed`, { method: 'PUT', headers: admin })).status, 204)
  await waitFor('consumed as the edge sees it', async () => await edgeView(n1, 'r1') === 'consumed' ? true : undefined)
  t.notOk((await cloudList()).some((x) => x.objectID === 'r1'), 'consumed objects leave the unconsumed list')
})

t.test('edge to cloud - a 50 MB object is pulled by the CSS in chunks and arrives intact', async (t) => {
  t.equal(await edgePut(n1, 'big', {}), 204)
  const up = await fetch(`${n1.restUrl}/api/v1/objects/report/big/data`, { method: 'PUT', headers: { ...app, 'content-type': 'application/octet-stream' }, body: Readable.from(generateBytes(SIZE, 1024 * 1024)) as unknown as RequestInit['body'], duplex: 'half' } as RequestInit)
  t.equal(up.status, 204)
  await waitFor('big stored on the CSS', async () => (await cloudList()).find((x) => x.objectID === 'big' && x.objectSize === SIZE), 60_000)
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/report/big/data`, { headers: admin })
  t.equal(await hashOf(r.body as unknown as AsyncIterable<Uint8Array>), await hashOf(generateBytes(SIZE, 1024 * 1024)), 'byte-exact on the CSS')
  await waitFor('delivered as the edge sees it', async () => await edgeView(n1, 'big') === 'delivered' ? true : undefined)
})

t.test('edge to cloud - an edge cannot take over an object another edge sent, nor overwrite cloud objects locally', async (t) => {
  t.equal(await edgePut(n2, 'r1', { description: 'forged' }, 'kWh 0'), 204, 'the edge stores its own copy')
  // Barrier: m2's next offer reaches the CSS after the forged one.
  t.equal(await edgePut(n2, 'r1-after', {}, 'later'), 204)
  await waitFor('m2\'s later offer stored', async () => (await cloudList()).find((x) => x.objectID === 'r1-after'))
  const meta = await (await fetch(`${css.restUrl}/api/v1/objects/org1/report/r1`, { headers: admin })).json() as { originID: string, description: string }
  t.equal(meta.originID, 'm1', 'the CSS keeps m1 as the origin')
  t.equal(meta.description, 'daily report')
  await fetch(`${css.restUrl}/api/v1/objects/org1/conf/c1`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationID: 'm1', destinationType: 'meter' }, data: Buffer.from('cfg').toString('base64') }) })
  await waitFor('c1 on m1', async () => (await fetch(`${n1.restUrl}/api/v1/objects/conf/c1`, { headers: app })).status === 200 ? true : undefined)
  const r = await fetch(`${n1.restUrl}/api/v1/objects/conf/c1`, { method: 'PUT', headers: { ...app, 'content-type': 'application/json' }, body: JSON.stringify({ meta: {} }) })
  t.equal(r.status, 409, 'an edge app cannot overwrite an object the cloud sent')
})

t.test('edge to cloud - consumed in the cloud shows as consumedByDest on the edge; an edge app deletes its object everywhere', async (t) => {
  t.equal(await edgePut(n1, 'r9', { description: 'to delete' }, 'kWh 9'), 204)
  await waitFor('r9 on the CSS', async () => (await cloudList()).find((x) => x.objectID === 'r9'))
  t.equal((await fetch(`${css.restUrl}/api/v1/objects/org1/report/r9/consumed`, { method: 'PUT', headers: admin })).status, 204)
  await waitFor('consumedByDest on the edge', async () => {
    const m = await (await fetch(`${n1.restUrl}/api/v1/objects/report/r9`, { headers: app })).json() as { status: string }
    return m.status === 'consumedByDest' ? true : undefined
  })
  t.pass('the edge shows the object consumed by the cloud (consumedByDest)')
  const del = await fetch(`${n1.restUrl}/api/v1/objects/report/r9`, { method: 'DELETE', headers: app })
  t.equal(del.status, 204, 'DELETE of its own object: 204')
  t.equal((await fetch(`${n1.restUrl}/api/v1/objects/report/r9`, { headers: app })).status, 404, 'gone for the edge\'s apps at once')
  await waitFor('r9 gone from the CSS', async () => (await fetch(`${css.restUrl}/api/v1/objects/org1/report/r9`, { headers: admin })).status === 404 ? true : undefined)
  t.equal((await fetch(`${n1.restUrl}/api/v1/objects/conf/c1`, { method: 'DELETE', headers: app })).status, 409, 'an object the cloud sent is not the edge app\'s to delete')
  t.equal((await fetch(`${n1.restUrl}/api/v1/objects/report/r9`, { method: 'DELETE', headers: app })).status, 404, 'deleting again: 404')
})

t.test('edge to cloud - the CSS calls its apps\' webhooks, signed, when an edge object arrives or is withdrawn', async (t) => {
  const { createServer } = await import('node:http')
  const { createHmac } = await import('node:crypto')
  const { readFile } = await import('node:fs/promises')
  const calls: Array<{ event: string, signature: string, body: string }> = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      calls.push({ event: String(req.headers['x-sync-event']), signature: String(req.headers['x-sync-signature']), body })
      // The first call about r-hook fails: it must be retried. (Notices about objects of earlier
      // subtests may arrive too: they are answered 200.)
      const first = body.includes('"r-hook"') && calls.filter((c) => c.body.includes('"r-hook"')).length === 1
      res.writeHead(first ? 503 : 200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const port = (server.address() as { port: number }).port
  const reg = await fetch(`${css.restUrl}/api/v1/objects/org1/report`, {
    method: 'PUT',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'register', url: `http://127.0.0.1:${port}/hook` })
  })
  t.equal(reg.status, 204)
  t.equal(await edgePut(n2, 'r-hook', { description: 'watched' }, 'kWh 1'), 204)
  const hook = (event: string): typeof calls => calls.filter((c) => c.event === event && c.body.includes('"r-hook"'))
  await waitFor('the webhook called again after its failure', async () => hook('update').length >= 2 ? true : undefined, 15_000)
  const call = hook('update')[0]
  const meta = JSON.parse(call?.body ?? '{}') as { objectID: string, originID: string, event: string }
  t.same([meta.event, meta.objectID, meta.originID], ['update', 'r-hook', 'm2'])
  const secret = (await readFile(`${root}/css/css/webhook-secret`, 'utf8')).trim()
  t.equal(call?.signature, `sha256=${createHmac('sha256', secret).update(call?.body ?? '').digest('hex')}`, 'signed with the CSS\'s webhook secret')
  t.equal((await fetch(`${n2.restUrl}/api/v1/objects/report/r-hook`, { method: 'DELETE', headers: app })).status, 204)
  await waitFor('a delete notice', async () => hook('delete')[0])
  t.pass('the withdraw is notified as a delete')
})
