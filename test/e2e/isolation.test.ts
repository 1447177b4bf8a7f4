/**
 * Tenant isolation and forged identities on the embedded broker, and tampered objects rejected at
 * the edge (signed objects), with key rotation and node removal taking effect at once.
 */
import { open, readFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import mqtt from 'mqtt'
import t from 'tap'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { freePort } from '../../harness/ports.js'

const root = t.testdir()
const css = await startCss(t, path.join(root, 'css'))
const admin = { authorization: basic(ADMIN) }
const app = { authorization: basic(APP) }
async function enrollFull (org: string, type: string, id: string): Promise<{ secret: string, signingKey: string }> {
  const r = await fetch(`${css.restUrl}/api/v1/nodes/${org}/${type}/${id}/enroll`, { method: 'POST', headers: admin })
  return await r.json() as { secret: string, signingKey: string }
}
async function put (org: string, id: string, meta: Record<string, unknown>, data: string): Promise<number> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/${org}/conf/${id}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge', ...meta }, data: Buffer.from(data).toString('base64') }) })
  return r.status
}
async function delivery (org: string, id: string, node: string): Promise<{ status: string, message: string } | undefined> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/${org}/conf/${id}/destinations`, { headers: admin })
  return r.ok ? ((await r.json()) as Array<{ destinationID: string, status: string, message: string }>).find((d) => d.destinationID === node) : undefined
}
function client (username: string, password: string): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(css.mqttUrls[0] ?? '', { username, password, clientId: `${username}/t-${Math.random()}`, protocolVersion: 4, reconnectPeriod: 0 })
}

t.test('security - a node of org A can neither subscribe to nor publish on org B topics', async (t) => {
  const a = await enrollFull('orgA', 'edge', 'a1')
  const b = await enrollFull('orgB', 'edge', 'b1')
  const c = await client('orgA/edge/a1', a.secret)
  t.teardown(() => c.endAsync(true))
  // mqtt.js reports a SUBACK with failure codes as an error carrying the packet.
  const suback = await c.subscribeAsync({ 'sync/v1/orgB/edge/b1/down': { qos: 1 }, 'sync/v1/orgB/_all/_all/down': { qos: 1 }, 'sync/v1/#': { qos: 1 }, 'sync/v1/orgA/edge/a1/down': { qos: 1 } })
    .then(() => undefined, (err: { packet?: { granted?: number[] } }) => err.packet?.granted)
  t.same(suback, [128, 128, 128, 1], 'only its own down topic is granted; the client stays connected')
  t.ok(c.connected)
  const seen: string[] = []
  c.on('message', (topic) => { seen.push(topic) })
  // An org B node registers and gets an object; nothing of it may reach the org A client.
  const bClient = await client('orgB/edge/b1', b.secret)
  t.teardown(() => bClient.endAsync(true))
  // Barrier: b1 itself receives the object; the broker hands a message to every subscriber at once,
  // so once b1 has it, a leak to a1 would have happened too.
  await bClient.subscribeAsync({ 'sync/v1/orgB/edge/b1/down': { qos: 1 }, 'sync/v1/orgB/edge/_all/down': { qos: 1 } })
  const bGot = new Promise<number>((resolve) => {
    bClient.on('message', (_topic, payload) => {
      const m = JSON.parse(payload.toString()) as { kind: string, meta?: { objectID: string, instanceID: number } }
      if (m.kind === 'update' && m.meta?.objectID === 'secret-b') resolve(m.meta.instanceID)
    })
  })
  await bClient.publishAsync('sync/v1/orgB/edge/b1/up', JSON.stringify({ v: 1, kind: 'register', properties: {}, codeVersion: 't', holdings: [] }), { qos: 1 })
  t.equal(await put('orgB', 'secret-b', {}, 'org B only'), 204)
  const instanceId = await bGot
  t.same(seen.filter((s) => s.includes('orgB')), [], 'no org B message reached org A')
  // Publishing as b1 (its topic) with a1's login: the broker refuses and drops the client.
  const forged = await client('orgA/edge/a1', a.secret)
  const closed = new Promise<void>((resolve) => forged.once('close', () => { resolve() }))
  forged.publish('sync/v1/orgB/edge/b1/up', JSON.stringify({ v: 1, kind: 'ack', state: 'consumed', objectType: 'conf', objectId: 'secret-b', instanceId: 1 }), { qos: 1 })
  await closed
  t.pass('a publish on another tenant\'s topic closes the connection')
  // Barrier: b1's own ack, sent after the forged one was refused, reaches the CSS.
  const ack = { v: 1, kind: 'ack', state: 'received', objectType: 'conf', objectId: 'secret-b', instanceId }
  await bClient.publishAsync('sync/v1/orgB/edge/b1/up', JSON.stringify(ack), { qos: 1 })
  await waitFor('b1\'s own ack processed', async () => (await delivery('orgB', 'secret-b', 'b1'))?.status === 'delivered' ? true : undefined)
  t.equal((await delivery('orgB', 'secret-b', 'b1'))?.status, 'delivered', 'the forged consumed ack never reached the CSS')
  await t.rejects(client('orgB/edge/b1', a.secret), 'org A\'s secret does not open org B\'s node')
})

t.test('security - a removed node is disconnected at once and cannot log in again', async (t) => {
  const n = await enrollFull('orgA', 'edge', 'gone1')
  const c = await client('orgA/edge/gone1', n.secret)
  const closed = new Promise<void>((resolve) => c.once('close', () => { resolve() }))
  t.equal((await fetch(`${css.restUrl}/api/v1/nodes/orgA/edge/gone1`, { method: 'DELETE', headers: admin })).status, 204)
  await closed
  t.pass('its live connection was dropped')
  c.end(true)
  await t.rejects(client('orgA/edge/gone1', n.secret), 'its credentials no longer work')
})

t.test('security - signed objects: tampered data in storage and tampered metadata on the wire are rejected at the edge', async (t) => {
  const e1 = await enrollFull('org1', 'edge', 's1')
  // Data changed in the CSS's storage after it was accepted (one byte of a large object, read
  // chunk by chunk at transfer time): the data no longer matches the signed hash.
  t.equal(await put('org1', 'fw', { destinationID: 's1' }, 'f'.repeat(400_000)), 204)
  const stored = await css.store.objects.get({ orgId: 'org1', objectType: 'conf', objectId: 'fw' })
  const blobFile = path.join(root, 'css', 'css', 'store', 'blobs', stored?.dataRef ?? 'x')
  const fh = await open(blobFile, 'r+')
  await fh.write(Buffer.from('X'), 0, 1, 300_000)
  await fh.close()
  const s1 = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 's1' }, e1.secret, { SigningKey: e1.signingKey })
  const d = await waitFor('fw rejected by s1', async () => { const x = await delivery('org1', 'fw', 's1'); return x?.status === 'error' ? x : undefined })
  t.match(d.message, /hash mismatch/, 'reported to the CSS as a delivery error')
  t.equal((await fetch(`${s1.restUrl}/api/v1/objects/conf/fw`, { headers: app })).status, 404, 'nothing reached the edge app')

  // Metadata changed on the wire by a proxy between the broker and the edge: the signature fails.
  const e2 = await enrollFull('org1', 'edge', 's2')
  const proxyPort = await freePort()
  const brokerPort = Number(new URL(css.mqttUrls[0] ?? '').port)
  const proxy = net.createServer((down) => {
    const up = net.connect(brokerPort, '127.0.0.1')
    up.on('data', (b: Buffer) => { down.write(Buffer.from(b.toString('latin1').replaceAll('"version":"1.0"', '"version":"6.6"'), 'latin1')) })
    down.on('data', (b) => up.write(b))
    const end = (): void => { up.destroy(); down.destroy() }
    up.on('error', end); down.on('error', end); up.on('close', end); down.on('close', end)
  })
  await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve))
  t.teardown(() => { proxy.close() })
  const s2 = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 's2' }, e2.secret, { SigningKey: e2.signingKey, BrokerAddress: `mqtt://127.0.0.1:${proxyPort}` })
  // Registered first, so the object goes out once (not also as a resend on register).
  await waitFor('s2 registered', async () => ((await (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: admin })).json()) as Array<{ destinationID: string }>).some((n) => n.destinationID === 's2') ? true : undefined)
  t.equal(await put('org1', 'cfg', { destinationID: 's2', version: '1.0' }, 'limits'), 204)
  const d2 = await waitFor('cfg rejected by s2', async () => { const x = await delivery('org1', 'cfg', 's2'); return x?.status === 'error' ? x : undefined })
  t.match(d2.message, /bad signature/)
  const got = await fetch(`${s2.restUrl}/api/v1/objects/conf/cfg`, { headers: app }); t.equal(got.status, 404, await got.text())
  t.equal(await put('org1', 'cfg', { destinationID: 's2', version: '2.0' }, 'limits'), 204)
  await waitFor('an untampered instance is accepted', async () => (await delivery('org1', 'cfg', 's2'))?.status === 'delivered' ? true : undefined)
})

t.test('security - key rotation without downtime: edges learn the new key from a message signed by the old one', async (t) => {
  const e = await enrollFull('org1', 'edge', 'r1')
  const ess = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'r1' }, e.secret, { SigningKey: e.signingKey })
  t.equal(await put('org1', 'before', { destinationID: 'r1' }, 'x'), 204)
  await waitFor('before delivered', async () => (await delivery('org1', 'before', 'r1'))?.status === 'delivered' ? true : undefined)
  const rot = await fetch(`${css.restUrl}/api/v1/keys/org1/rotate`, { method: 'POST', headers: admin })
  const newKey = ((await rot.json()) as { publicKey: string }).publicKey
  t.not(newKey.split(':')[0], e.signingKey.split(':')[0])
  await waitFor('the edge persisted the new key', async () => {
    try { return (await readFile(path.join(root, 'ess', 'ess', 'org1-edge-r1', 'trusted-keys.json'), 'utf8')).includes(newKey) ? true : undefined } catch { return undefined }
  })
  t.equal(await put('org1', 'after', { destinationID: 'r1' }, 'y'), 204)
  await waitFor('after (signed by the new key) delivered', async () => (await delivery('org1', 'after', 'r1'))?.status === 'delivered' ? true : undefined)
  t.equal((await fetch(`${ess.restUrl}/api/v1/objects/conf/after/data`, { headers: app })).status, 200)
})
