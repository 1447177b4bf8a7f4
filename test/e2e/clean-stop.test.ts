/**
 * Stopping a CSS while edges are connected (and keep talking: heartbeats, registers on reconnect)
 * logs no errors: edges' messages that arrive during the stop are refused, not failed on a closed
 * store.
 */
import t from 'tap'
import { buildConfig } from '../../src/common/config/load.js'
import { startCss as startCloudSyncService } from '../../src/app/css.js'
import { ADMIN, basic, startEss, waitFor } from '../helpers/cluster.js'
import { captureLogger } from '../helpers/capture-log.js'

t.test('a CSS stopped with edges connected logs no errors', async (t) => {
  const root = t.testdir()
  const log = captureLogger()
  const cfg = buildConfig({}, {}, { PersistenceRootPath: `${root}/css`, ListeningPort: 0, MqttListeningPort: 0, AdminKey: ADMIN.key, AdminSecret: ADMIN.secret })
  const css = await startCloudSyncService(cfg, log)
  let closed = false
  t.teardown(async () => { if (!closed) await css.close() })
  const edges = []
  for (const id of ['n1', 'n2', 'n3']) edges.push(await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id }, undefined, { HeartbeatIntervalSeconds: 1 }))
  await waitFor('3 nodes online', async () => {
    const r = await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: { authorization: basic(ADMIN) } })
    const list = await r.json() as Array<{ online: boolean }>
    return list.length === 3 && list.every((n) => n.online) ? true : undefined
  })
  // Objects in flight while it stops.
  for (let i = 0; i < 5; i++) {
    await fetch(`${css.restUrl}/api/v1/objects/org1/conf/c${i}`, {
      method: 'PUT',
      headers: { authorization: basic(ADMIN), 'content-type': 'application/json' },
      body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from(`v${i}`).toString('base64') })
    })
  }
  await css.close()
  closed = true
  await new Promise((resolve) => setTimeout(resolve, 300)) // edges' reconnect attempts meet a stopped CSS
  const errors = log.lines.filter((l) => l.level === 'error')
  t.same(errors.map((l) => `${l.msg} ${JSON.stringify(l.meta).slice(0, 200)}`), [], 'no error logged while stopping')
})
