/**
 * Deletes are signed like updates: an edge obeys only deletes its org's CSS signed. Shown on an
 * external Mosquitto, where whoever holds a broker account that may write down topics (here the
 * test, with the CSS's account) can inject a forged delete.
 */
import mqtt from 'mqtt'
import t from 'tap'
import { mosquittoAclText, mosquittoPasswordLine } from '../../src/security/index.js'
import { requireBinary } from '../helpers/binaries.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { startMosquitto } from '../../harness/mosquitto.js'

const mosqBin = requireBinary(t, 'mosquitto', 'apt-get install mosquitto')

if (mosqBin !== undefined) {
  const root = t.testdir()
  const cssLine = mosquittoPasswordLine('css', 'css-secret')
  const mosq = await startMosquitto(mosqBin, cssLine, mosquittoAclText('css', []))
  t.teardown(() => mosq.stop())
  const css = await startCss(t, `${root}/css`, { BrokerMode: 'external', BrokerAddress: mosq.url, BrokerUsername: 'css', BrokerPassword: 'css-secret' })
  const admin = { authorization: basic(ADMIN) }
  const e = await (await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/d1/enroll`, { method: 'POST', headers: admin })).json() as { secret: string, signingKey: string }
  const key = { orgId: 'org1', destinationType: 'edge', destinationId: 'd1' }
  await mosq.setAuth(`${cssLine}\n${mosquittoPasswordLine('org1/edge/d1', e.secret)}`, mosquittoAclText('css', [key]))
  const ess = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'd1' }, e.secret, { SigningKey: e.signingKey, BrokerAddress: mosq.edgeUrl })

  const put = async (text: string): Promise<void> => {
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/doc`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from(text).toString('base64') }) })
    if (r.status !== 204) throw new Error(`PUT answered ${r.status}`)
  }
  const onEdge = async (): Promise<{ status: number, instanceID?: number, state?: string }> => {
    const r = await fetch(`${ess.restUrl}/api/v1/objects/conf/doc`, { headers: { authorization: basic(APP) } })
    if (!r.ok) return { status: r.status }
    const m = await r.json() as { instanceID: number, status: string }
    return { status: r.status, instanceID: m.instanceID, state: m.status }
  }

  t.test('a forged delete is not obeyed; a signed one is', async (t) => {
    await put('v1')
    const first = await waitFor('v1 on the edge', async () => { const o = await onEdge(); return o.status === 200 ? o : undefined })
    const forger = await mqtt.connectAsync(mosq.url, { username: 'css', password: 'css-secret', clientId: 'forger', protocolVersion: 4, reconnectPeriod: 0 })
    t.teardown(() => forger.endAsync(true))
    // A delete of a far-future instance: obeyed, it would also block every later update.
    const forged = { v: 1, kind: 'delete', objectType: 'conf', objectId: 'doc', instanceId: 1000 }
    await forger.publishAsync('sync/v1/org1/edge/d1/down', JSON.stringify(forged), { qos: 1 })
    await forger.publishAsync('sync/v1/org1/edge/d1/down', JSON.stringify({ ...forged, sig: { keyId: 'k', value: Buffer.alloc(64).toString('base64') } }), { qos: 1 })
    // Barrier: the next real update arrives after the forged deletes on the same topic.
    await put('v2')
    const second = await waitFor('v2 on the edge', async () => { const o = await onEdge(); return o.instanceID !== undefined && o.instanceID > (first.instanceID ?? 0) ? o : undefined })
    t.equal(second.state, 'completelyReceived', 'the object is still there, at its next instance: the forged deletes were refused')
    const del = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/doc`, { method: 'DELETE', headers: admin })
    t.equal(del.status, 204)
    await waitFor('signed delete obeyed', async () => (await onEdge()).state === 'objdeleted' ? true : undefined)
    t.pass('the CSS\'s signed delete removes it from the edge')
    // Closed here, before tap removes the test folder, not in the file's teardowns.
    await forger.endAsync(true)
    await ess.close()
    await css.close()
  })
}
