/**
 * The scale-out check of the HTTP link: an edge (w1) polls one CSS instance only; objects are
 * written on another instance; each must reach the edge, and its ack must reach the shared store.
 */
import path from 'node:path'
import type { Test } from 'tap'
import { ADMIN, APP, basic, waitFor } from './cluster.js'
import { startProcess } from './processes.js'

export async function checkLinkFollows (t: Test, o: { polled: string, writer: string, root: string }): Promise<void> {
  const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
  const r = await fetch(`${o.polled}/api/v1/nodes/org1/edge/w1/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
  const secret = ((await r.json()) as { secret: string }).secret
  const p = await startProcess(t, 'ess', {
    PERSISTENCE_ROOT_PATH: path.join(o.root, 'ess', 'w1'),
    LISTENING_PORT: '0',
    ORG_ID: 'org1',
    DESTINATION_TYPE: 'edge',
    DESTINATION_ID: 'w1',
    NODE_SECRET: secret,
    COMMUNICATION_PROTOCOL: 'http',
    HTTP_CSS_ADDRESS: o.polled,
    ADMIN_KEY: APP.key,
    ADMIN_SECRET: APP.secret
  })
  const w1 = /REST (\S+)/.exec(p.line)?.[1] ?? ''
  await waitFor('w1 registered over HTTP, as the writer sees it', async () => {
    const list = await (await fetch(`${o.writer}/api/v1/destinations/org1`, { headers: admin })).json() as Array<{ destinationID: string }>
    return list.some((d) => d.destinationID === 'w1') ? true : undefined
  }, 30_000)
  for (let i = 0; i < 3; i++) {
    const put = await fetch(`${o.writer}/api/v1/objects/org1/linked/l${i}`, { method: 'PUT', headers: admin, body: JSON.stringify({ meta: { destinationType: 'edge', destinationID: 'w1' }, data: Buffer.from(`written ${i}`).toString('base64') }) })
    t.equal(put.status, 204)
    const text = await waitFor(`l${i} on w1`, async () => {
      const g = await fetch(`${w1}/api/v1/objects/linked/l${i}/data`, { headers: { authorization: basic(APP) } })
      return g.status === 200 ? await g.text() : undefined
    }, 30_000)
    t.equal(text, `written ${i}`, `l${i}, written on one instance, reached w1 on the other's link`)
  }
  const d = await waitFor('l2 delivered, as the writer sees it', async () => {
    const list = await (await fetch(`${o.writer}/api/v1/objects/org1/linked/l2/destinations`, { headers: admin })).json() as Array<{ status: string }>
    return list[0]?.status === 'delivered' ? list : undefined
  }, 30_000)
  t.equal(d[0]?.status, 'delivered', 'the ack came back over HTTP and reached the shared store')
}
