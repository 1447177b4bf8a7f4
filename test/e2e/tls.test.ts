/** TLS end to end with `syncctl certs` output: HTTPS REST, mqtts and wss broker listeners, client certificates. */
import https from 'node:https'
import path from 'node:path'
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { createProgram } from '../../src/admin/program.js'
import { silentLogger } from '../../src/common/log.js'
import { connectMqtt } from '../../src/transport/index.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'

const root = t.testdir()
const dir = path.join(root, 'certs')
const other = path.join(root, 'other-ca')

async function syncctl (...args: string[]): Promise<string> {
  let out = ''
  await createProgram({ stdout: (s) => { out += s }, stderr: () => {}, fetch, env: {} }).parseAsync(['node', 'syncctl', ...args])
  return out
}

t.match(await syncctl('certs', 'ca', '--dir', dir), /CA written/)
t.match(await syncctl('certs', 'server', '--dir', dir, 'localhost', '127.0.0.1'), /ServerCertificate .*server\.pem\nServerKey .*server-key\.pem/)
t.match(await syncctl('certs', 'client', '--dir', dir, 'org1', 'edge', 'n2'), /ClientCertificate .*node-org1-edge-n2\.pem/)
await syncctl('certs', 'ca', '--dir', other, '--cn', 'another CA')
await t.rejects(syncctl('certs', 'ca', '--dir', dir), /already exist/, 'an existing CA is never overwritten without --force')
const ca = await readFile(path.join(dir, 'ca.pem'), 'utf8')
const otherCa = await readFile(path.join(other, 'ca.pem'), 'utf8')

const css = await startCss(t, path.join(root, 'css'), {
  ServerCertificate: path.join(dir, 'server.pem'),
  ServerKey: path.join(dir, 'server-key.pem'),
  CaCertificate: path.join(dir, 'ca.pem'),
  MqttTlsListeningPort: 0,
  MqttWsListeningPort: 0,
  RequireTls: true
})

function request (url: string, trust: string, auth?: string, method = 'GET', body?: string): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca: trust, headers: { ...(auth === undefined ? {} : { authorization: auth }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) } }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Enrolls a node (a new secret when it is enrolled already) over HTTPS. */
async function enroll (org: string, type: string, id: string): Promise<string> {
  const url = `${css.restUrl}/api/v1/nodes/${org}/${type}/${id}/enroll`
  let r = await request(url, ca, basic(ADMIN), 'POST')
  if (r.status === 409) r = await request(`${url}?rotate=true`, ca, basic(ADMIN), 'POST')
  return (JSON.parse(r.text) as { secret: string }).secret
}

t.test('security - REST is HTTPS only, verified against the generated CA', async (t) => {
  t.match(css.restUrl, /^https:\/\//)
  t.equal((await request(`${css.restUrl}/healthz`, ca)).status, 200)
  t.equal((await request(`${css.restUrl}/api/v1/destinations/org1`, ca, basic(ADMIN))).status, 200)
  await t.rejects(request(`${css.restUrl}/healthz`, otherCa), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, 'a client pinned to another CA refuses the server')
  await t.rejects(fetch(css.restUrl.replace('https:', 'http:') + '/healthz'), 'plain HTTP gets no answer')
})

t.test('security - the broker listens only on mqtts and wss when TLS is required', async (t) => {
  t.same(css.mqttUrls.map((u) => u.split(':')[0]), ['mqtts', 'wss'])
  const secret = await enroll('org1', 'edge', 'n9')
  const plainUrl = (css.mqttUrls[0] ?? '').replace('mqtts:', 'mqtt:')
  const c = await connectMqtt({ url: plainUrl, clientId: 'org1/edge/n9/plain', username: 'org1/edge/n9', password: secret, subscriptions: [], onMessage: async () => {}, firstConnectWaitMs: 1500, log: silentLogger })
  // connectMqtt returned only after its 1.5 s first-connect wait ran out: that wait is the barrier.
  t.notOk(c.connected, 'a plain-text client on the TLS port never connects')
  await c.close()
  await t.rejects(connectMqtt({ url: css.mqttUrls[0] ?? '', clientId: 'wrong-ca', username: 'org1/edge/n9', password: secret, tls: { ca: otherCa }, subscriptions: [], onMessage: async () => {}, log: silentLogger }),
    { code: 'SYNC_ERR_TRANSPORT', message: /not trusted/ }, 'an ESS pinned to another CA refuses the broker at once')
})

t.test('security - a node logs in with a client certificate; a certificate cannot claim another identity', async (t) => {
  await enroll('org1', 'edge', 'n2')
  await enroll('org1', 'edge', 'n1')
  const tls = { ca, cert: await readFile(path.join(dir, 'node-org1-edge-n2.pem'), 'utf8'), key: await readFile(path.join(dir, 'node-org1-edge-n2-key.pem'), 'utf8') }
  const ok = await connectMqtt({ url: css.mqttUrls[0] ?? '', clientId: 'org1/edge/n2', username: 'org1/edge/n2', tls, subscriptions: [], onMessage: async () => {}, log: silentLogger })
  t.ok(ok.connected, 'certificate without password accepted')
  await ok.close()
  await t.rejects(connectMqtt({ url: css.mqttUrls[0] ?? '', clientId: 'cert-as-n1', username: 'org1/edge/n1', tls, subscriptions: [], onMessage: async () => {}, log: silentLogger }),
    { code: 'SYNC_ERR_TRANSPORT', message: /refused/ }, 'n2 certificate with n1 username refused')
})

t.test('security - objects reach an ESS over mqtts (password) and one over wss (client certificate)', async (t) => {
  const n1 = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'n1' }, await enroll('org1', 'edge', 'n1'), { BrokerAddress: css.mqttUrls[0] ?? '', CaCertificate: path.join(dir, 'ca.pem'), RequireTls: true })
  const n2 = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'n2' }, '', {
    BrokerAddress: css.mqttUrls[1] ?? '',
    CaCertificate: path.join(dir, 'ca.pem'),
    ClientCertificate: path.join(dir, 'node-org1-edge-n2.pem'),
    ClientKey: path.join(dir, 'node-org1-edge-n2-key.pem')
  })
  const body = JSON.stringify({ meta: { objectID: 'tls1', objectType: 'conf', destinationType: 'edge' }, data: Buffer.from('over TLS').toString('base64') })
  t.equal((await request(`${css.restUrl}/api/v1/objects/org1/conf/tls1`, ca, basic(ADMIN), 'PUT', body)).status, 204)
  for (const ess of [n1, n2]) {
    await waitFor(`tls1 on ${ess.node.destinationId}`, async () => {
      const r = await fetch(`${ess.restUrl}/api/v1/objects/conf/tls1/data`, { headers: { authorization: basic(APP) } })
      return r.status === 200 ? await r.text() : undefined
    }).then((text) => t.equal(text, 'over TLS', `${ess.node.destinationId} has the data`))
  }
})

t.test('security - syncctl against an HTTPS CSS it does not trust names the reason and the fix', async (t) => {
  const { createProgram } = await import('../../src/admin/program.js')
  let err = ''
  const env = { SYNC_URL: css.restUrl, SYNC_KEY: ADMIN.key, SYNC_SECRET: ADMIN.secret }
  const p = createProgram({ stdout: () => {}, stderr: () => {}, fetch, env })
  try {
    await p.parseAsync(['node', 'syncctl', 'nodes', 'list', 'org1'])
  } catch (e) {
    err = (e as Error).message
  }
  t.match(err, /TLS certificate is not trusted \([A-Z_]+\).*NODE_EXTRA_CA_CERTS=certs\/ca\.pem/)
})
