/**
 * One write followed through both services' logs: the client's x-request-id becomes the instance's
 * traceId, travels to the edge with the object, comes back in the edge's ack, and is in the log
 * lines of the CSS (publish, ack) and of the ESS (update).
 */
import path from 'node:path'
import t from 'tap'
import { buildConfig } from '../../src/common/config/load.js'
import { startCss } from '../../src/app/css.js'
import { startEss } from '../../src/app/ess.js'
import { captureLogger } from '../helpers/capture-log.js'
import { ADMIN, APP, basic, enroll, waitFor } from '../helpers/cluster.js'

const root = t.testdir()
const cssLog = captureLogger()
const css = await startCss(buildConfig({}, {}, { PersistenceRootPath: path.join(root, 'css'), ListeningPort: 0, MqttListeningPort: 0, AdminKey: ADMIN.key, AdminSecret: ADMIN.secret, LogLevel: 'debug' }), cssLog)
t.teardown(() => css.close())
const essLog = captureLogger()
const ess = await startEss(buildConfig({}, {}, {
  NodeType: 'ESS',
  OrgID: 'org1',
  DestinationType: 'edge',
  DestinationID: 'n1',
  NodeSecret: await enroll(css, 'org1', 'edge', 'n1'),
  BrokerAddress: css.mqttUrls[0] ?? '',
  PersistenceRootPath: path.join(root, 'ess'),
  ListeningPort: 0,
  AdminKey: APP.key,
  AdminSecret: APP.secret,
  LogLevel: 'debug'
}), essLog)
t.teardown(() => ess.close())

t.test('tracing - a request id follows its instance to the edge and back', async (t) => {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/traced`, {
    method: 'PUT',
    headers: { authorization: basic(ADMIN), 'content-type': 'application/json', 'x-request-id': 'follow-me-1' },
    body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from('x').toString('base64') })
  })
  t.equal(r.status, 204)
  t.equal(r.headers.get('x-request-id'), 'follow-me-1')
  const meta = await waitFor('on the edge', async () => {
    const m = await fetch(`${ess.restUrl}/api/v1/objects/conf/traced`, { headers: { authorization: basic(APP) } })
    return m.status === 200 ? await m.json() as { traceId?: string } : undefined
  })
  t.equal(meta.traceId, 'follow-me-1', 'the edge app sees which request wrote it')
  const traced = (lines: typeof cssLog.lines, msg: string): boolean => lines.some((l) => l.msg === msg && l.meta.trace === 'follow-me-1')
  t.ok(traced(cssLog.lines, 'Publishing'), 'CSS: published')
  t.ok(traced(essLog.lines, 'Update'), 'ESS: received')
  await waitFor('the ack at the CSS', async () => traced(cssLog.lines, 'Edge ack') ? true : undefined)
  t.pass('CSS: the edge\'s ack carried it back')
})
