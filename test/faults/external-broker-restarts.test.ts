/**
 * Faults on an external Mosquitto (no persistence): the broker restarted under a CSS and its
 * edges, edges that registered before any CSS was subscribed, and a CSS restarted with messages
 * queued for it. After each, every destination ends `consumed` with the newest instance: an ESS
 * registers again until answered, the CSS asks every node to register after it (re)subscribes, and
 * a restarted CSS resumes its own session under its stable instance id.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import type { CssHandle } from '../../src/app/css.js'
import type { EssHandle } from '../../src/app/ess.js'
import { mosquittoAclText, mosquittoPasswordLine } from '../../src/security/index.js'
import { requireBinary } from '../helpers/binaries.js'
import { ADMIN, APP, basic, enroll, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js'

const mosqBin = requireBinary(t, 'mosquitto', 'apt-get install mosquitto')

if (mosqBin !== undefined) {
  const root = t.testdir()
  const cssLine = mosquittoPasswordLine('css', 'css-secret')
  const ids = ['e1', 'e2', 'e3']
  const keys = ids.map((id) => ({ orgId: 'org1', destinationType: 'edge', destinationId: id }))
  const secrets = new Map<string, string>()
  const auth = (): [string, string] => [[cssLine, ...ids.map((id) => mosquittoPasswordLine(`org1/edge/${id}`, secrets.get(id) ?? ''))].join('\n'), mosquittoAclText('css', keys)]
  let mosq: Mosquitto = await startMosquitto(mosqBin, cssLine, mosquittoAclText('css', keys))
  t.teardown(() => mosq.stop())
  const cssConfig = { BrokerMode: 'external', BrokerAddress: mosq.url, BrokerUsername: 'css', BrokerPassword: 'css-secret' }
  // A first CSS only to enroll the nodes; it is closed before the edges start.
  const setup = await startCss(t, path.join(root, 'css'), cssConfig)
  for (const id of ids) secrets.set(id, await enroll(setup, 'org1', 'edge', id))
  await setup.close()
  await mosq.setAuth(...auth())
  const firstId = (await readFile(path.join(root, 'css', 'css', 'instance-id'), 'utf8')).trim()

  // The edges start while no CSS is subscribed: their first registers are lost.
  const edges: EssHandle[] = []
  for (const id of ids) edges.push(await startEss(t, setup, path.join(root, 'ess'), { org: 'org1', type: 'edge', id }, secrets.get(id), { BrokerAddress: mosq.edgeUrl }))
  let css: CssHandle = await startCss(t, path.join(root, 'css'), cssConfig)

  const admin = { authorization: basic(ADMIN) }
  let version = 0
  async function publishAndConsume (what: string): Promise<void> {
    version++
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/c1`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from(`v${version}`).toString('base64') }) })
    if (r.status !== 204) throw new Error(`PUT ${r.status}`)
    const inst = Number(r.headers.get('x-sync-instance-id'))
    // Each edge app reads the newest data and consumes it.
    await Promise.all(edges.map(async (ess) => {
      await waitFor(`${what}: v${version} on ${ess.node.destinationId}`, async () => {
        const d = await fetch(`${ess.restUrl}/api/v1/objects/conf/c1/data`, { headers: { authorization: basic(APP) } })
        return d.ok && await d.text() === `v${version}` ? true : undefined
      }, 30_000)
      await fetch(`${ess.restUrl}/api/v1/objects/conf/c1/consumed`, { method: 'PUT', headers: { authorization: basic(APP) } })
    }))
    await waitFor(`${what}: every destination consumed v${version}`, async () => {
      const list = await (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/c1/destinations`, { headers: admin })).json() as Array<{ status: string, instanceID: number }>
      return list.length === ids.length && list.every((d) => d.status === 'consumed' && d.instanceID === inst) ? true : undefined
    }, 30_000)
  }

  t.test('edges that registered before any CSS was subscribed are registered and synced', async (t) => {
    await publishAndConsume('late CSS')
    const nodes = await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json() as unknown[]
    t.equal(nodes.length, ids.length, 'every edge registered')
  })

  t.test('the broker restarted (no persistence) under the CSS and its edges', async (t) => {
    const port = mosq.port
    await mosq.stop()
    mosq = await startMosquitto(mosqBin, ...auth(), { port, edgePort: Number(new URL(mosq.edgeUrl).port) })
    await publishAndConsume('broker restart')
    t.pass('every destination consumed the newest version after the broker restart')
  })

  t.test('a CSS restarted with messages queued for it resumes its own session', async (t) => {
    await css.close()
    css = await startCss(t, path.join(root, 'css'), cssConfig)
    const id = (await readFile(path.join(root, 'css', 'css', 'instance-id'), 'utf8')).trim()
    t.equal(id, firstId, 'the same instance id (client id) across restarts')
    for (let i = 0; i < 3; i++) await publishAndConsume(`CSS restart, round ${i + 1}`)
    t.pass('no message went to a dead session')
  })
}
