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
import { startMosquitto, type Mosquitto } from '../../harness/mosquitto.js'

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
  const firstId = (await readFile(path.join(root, 'css', 'css', 'instance-id'), 'utf8')).trim()
  // A broker without persistence, restarted: no session of the CSS survives, so what the edges
  // publish before a CSS subscribes again is dropped.
  const restartBroker = async (): Promise<void> => {
    const ports = { port: mosq.port, edgePort: Number(new URL(mosq.edgeUrl).port) }
    await mosq.stop('SIGKILL') // kill -9: no goodbye to anyone
    mosq = await startMosquitto(mosqBin, ...auth(), ports)
  }
  await restartBroker()

  // The edges start while no CSS is subscribed: their first registers are lost.
  const edges: EssHandle[] = []
  for (const id of ids) edges.push(await startEss(t, setup, path.join(root, 'ess'), { org: 'org1', type: 'edge', id }, secrets.get(id), { BrokerAddress: mosq.edgeUrl, HeartbeatIntervalSeconds: 3600 }))
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

  /**
   * Every edge registered with the CSS after `since` (heartbeats are hours apart here, so only a
   * register moves lastPingTime). Objects alone would not show it: a type-wide update reaches a
   * subscribed edge whether or not it registered; what it missed is resent only on register.
   */
  async function allRegisteredSince (since: number): Promise<void> {
    await waitFor('every edge registered again', async () => {
      const nodes = await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json() as Array<{ lastPingTime: string }>
      return nodes.length === ids.length && nodes.every((n) => Date.parse(n.lastPingTime) >= since) ? true : undefined
    }, 20_000)
  }

  t.test('edges that registered before any CSS was subscribed are registered and synced', async (t) => {
    await allRegisteredSince(0)
    await publishAndConsume('late CSS')
    t.pass('every edge registered, and every destination consumed')
  })

  t.test('the broker killed (-9) and restarted (no persistence); the edges reconnected before the CSS', async (t) => {
    // The worst order, made certain: the CSS is away while the broker restarts and the edges
    // reconnect and register into the void; it comes back after them.
    await css.close()
    await restartBroker()
    await Promise.all(edges.map(async (ess) => {
      await waitFor(`${ess.node.destinationId} reconnected`, async () => (await fetch(`${ess.restUrl}/readyz`)).ok ? true : undefined, 20_000)
    }))
    const since = Date.now()
    css = await startCss(t, path.join(root, 'css'), cssConfig)
    await allRegisteredSince(since)
    await publishAndConsume('broker restart')
    t.pass('every edge registered again, and every destination consumed the newest version')
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
