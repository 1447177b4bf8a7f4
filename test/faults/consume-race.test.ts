/**
 * An app is marked as having consumed only what it was shown. An edge app reads version k, version
 * k+1 arrives before the app's `PUT .../consumed`: the mark applies to k, k+1 stays listed, and
 * the CSS shows k+1 consumed only after the app consumed it. The same with an explicit If-Match.
 */
import path from 'node:path'
import t from 'tap'
import type { EssHandle } from '../../src/app/ess.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'

const root = t.testdir()
const css = await startCss(t, path.join(root, 'css'))
const ess = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'r1' })
const admin = { authorization: basic(ADMIN) }
const app = { authorization: basic(APP) }

async function publish (text: string): Promise<number> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/race`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from(text).toString('base64') }) })
  if (r.status !== 204) throw new Error(`PUT ${r.status}`)
  return Number(r.headers.get('x-sync-instance-id'))
}
// Read from the ESS's store, not its app API: a GET there would show the app the new version.
const held = async (): Promise<number | undefined> =>
  (await ess.store.objects.get({ orgId: 'org1', objectType: 'conf', objectId: 'race' }))?.meta.instanceID
const atCss = async (): Promise<{ status: string, instanceID: number } | undefined> =>
  ((await (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/race/destinations`, { headers: admin })).json()) as Array<{ status: string, instanceID: number }>)[0]
/** What the app's poll lists (this shows those versions to the app). */
const listed = async (): Promise<number[]> => {
  const r = await fetch(`${ess.restUrl}/api/v1/objects/conf`, { headers: app })
  return r.ok ? (await r.json() as Array<{ instanceID: number }>).map((o) => o.instanceID) : []
}

t.test('a version that arrives between the app\'s read and its consumed mark stays listed', async (t) => {
  const k = await publish('k')
  await waitFor('k held', async () => await held() === k ? true : undefined)
  const read = await fetch(`${ess.restUrl}/api/v1/objects/conf/race/data`, { headers: app })
  t.equal(await read.text(), 'k')
  t.equal(read.headers.get('etag'), `"${k}"`, 'the data answer names its instance')
  const k1 = await publish('k+1')
  await waitFor('k+1 held', async () => await held() === k1 ? true : undefined)
  // The app marks what it read (k), without naming it.
  t.equal((await fetch(`${ess.restUrl}/api/v1/objects/conf/race/consumed`, { method: 'PUT', headers: app })).status, 204)
  const mid = await atCss()
  t.equal(mid?.instanceID, k1)
  t.not(mid?.status, 'consumed', 'the CSS does not show k+1 consumed')
  t.same(await listed(), [k1], 'k+1 is still listed to the app')
  // Now the app reads k+1 and consumes it.
  t.equal(await (await fetch(`${ess.restUrl}/api/v1/objects/conf/race/data`, { headers: app })).text(), 'k+1')
  t.equal((await fetch(`${ess.restUrl}/api/v1/objects/conf/race/consumed`, { method: 'PUT', headers: app })).status, 204)
  await waitFor('k+1 consumed at the CSS', async () => { const d = await atCss(); return d?.status === 'consumed' && d.instanceID === k1 ? true : undefined })
  t.same(await listed(), [], 'nothing left to list')
})

t.test('If-Match names the instance a mark is for; a future one is a conflict', async (t) => {
  const k = await publish('m')
  await waitFor('m held', async () => await held() === k ? true : undefined)
  const ahead = await fetch(`${ess.restUrl}/api/v1/objects/conf/race/consumed`, { method: 'PUT', headers: { ...app, 'if-match': `"${k + 5}"` } })
  t.equal(ahead.status, 409, 'an instance not held yet cannot be consumed')
  const stale = await fetch(`${ess.restUrl}/api/v1/objects/conf/race/consumed`, { method: 'PUT', headers: { ...app, 'if-match': `"${k - 1}"` } })
  t.equal(stale.status, 204)
  t.same(await listed(), [k], 'a mark for an older instance leaves the current one listed')
  t.equal((await fetch(`${ess.restUrl}/api/v1/objects/conf/race/consumed?instanceID=${k}`, { method: 'PUT', headers: app })).status, 204)
  await waitFor('m consumed at the CSS', async () => { const d = await atCss(); return d?.status === 'consumed' && d.instanceID === k ? true : undefined })
  t.pass('the named instance is consumed')
})

t.test('a burst: 20 edges, 20 versions 200 ms apart, apps that poll, read and mark consumed', async (t) => {
  const edges: EssHandle[] = []
  for (let i = 0; i < 20; i++) edges.push(await startEss(t, css, path.join(root, `burst-${i}`), { org: 'org1', type: 'burst', id: `b${i}` }))
  const last = new Map<string, string>()
  const running = { stop: false }
  // The apps of the first wave's run: poll the list, read each listed object, mark it consumed.
  const loops = edges.map(async (e) => {
    while (!running.stop) {
      const list = await fetch(`${e.restUrl}/api/v1/objects/burst`, { headers: app })
      for (const o of list.ok ? await list.json() as Array<{ objectID: string }> : []) {
        const d = await fetch(`${e.restUrl}/api/v1/objects/burst/${o.objectID}/data`, { headers: app })
        if (d.ok) last.set(e.node.destinationId, await d.text())
        await fetch(`${e.restUrl}/api/v1/objects/burst/${o.objectID}/consumed`, { method: 'PUT', headers: app })
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })
  t.teardown(async () => { running.stop = true; await Promise.all(loops) })
  let inst = 0
  for (let v = 1; v <= 20; v++) {
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/burst/doc`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'burst' }, data: Buffer.from(`v${v}`).toString('base64') }) })
    inst = Number(r.headers.get('x-sync-instance-id'))
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  await waitFor('every app read v20', async () => edges.every((e) => last.get(e.node.destinationId) === 'v20') ? true : undefined, 30_000)
  await waitFor('v20 consumed at every destination', async () => {
    const d = await (await fetch(`${css.restUrl}/api/v1/objects/org1/burst/doc/destinations`, { headers: admin })).json() as Array<{ status: string, instanceID: number }>
    return d.length === 20 && d.every((x) => x.status === 'consumed' && x.instanceID === inst) ? true : undefined
  }, 30_000)
  t.pass('no app ended on an older version; the CSS shows the newest consumed everywhere')
})
