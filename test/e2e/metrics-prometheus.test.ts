/**
 * A real Prometheus scrapes a CSS and two ESS (with the EMS plugin on real Modbus TCP devices)
 * while objects are published and consumed and one edge rolls a config back; the test asks
 * Prometheus's HTTP API, as a dashboard or an alert rule would, and checks the figures.
 */
import path from 'node:path'
import t from 'tap'
import { buildConfig } from '../../src/common/config/load.js'
import { startCss as startCloudSyncService } from '../../src/app/css.js'
import { freePort } from '../../harness/ports.js'
import { startPrometheus, type Prometheus } from '../../harness/prometheus.js'
import { requireBinary } from '../helpers/binaries.js'
import { captureLogger } from '../helpers/capture-log.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { sampleEmsConfig } from '../helpers/ems.js'
import { deviceLayer, startEdgeDevices, type EdgeDevices } from '../helpers/sim-devices.js'

const bin = requireBinary(t, 'prometheus', 'apt-get install prometheus')

if (bin !== undefined) {
  const root = t.testdir()
  const css = await startCss(t, path.join(root, 'css'))
  const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
  const ids = ['n1', 'n2']
  const devices = new Map<string, EdgeDevices>()
  const ess = new Map<string, Awaited<ReturnType<typeof startEss>>>()
  for (const id of ids) {
    devices.set(id, await startEdgeDevices(t, 60000))
    const e = await (await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/${id}/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })).json() as { secret: string, signingKey: string }
    ess.set(id, await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id, props: 'site=A' }, e.secret, { Plugins: 'ems', HeartbeatIntervalSeconds: 1, SigningKey: e.signingKey }))
  }
  const hostPort = (u: string): string => new URL(u).host
  const prom: Prometheus = await startPrometheus(bin, [
    { job: 'css', target: hostPort(css.restUrl) },
    ...ids.map((id) => ({ job: `ess-${id}`, target: hostPort(ess.get(id)?.restUrl ?? '') }))
  ])
  t.teardown(() => prom.stop())

  /** The value of a query once Prometheus has scraped what the test did (it scrapes every second). */
  async function settles (promql: string, ok: (v: number) => boolean): Promise<number> {
    return await waitFor(`${promql} in Prometheus`, async () => {
      const r = await prom.query(promql)
      const v = r[0]?.value
      return v !== undefined && ok(v) ? v : undefined
    }, 30_000)
  }

  const emsCfg = sampleEmsConfig() as { core_cycle: { period_ms: number, health_window_ms?: number } }
  emsCfg.core_cycle.period_ms = 200
  emsCfg.core_cycle.health_window_ms = 800
  const putLayer = async (layer: string, doc: unknown): Promise<number> =>
    (await fetch(`${css.restUrl}/api/v1/ems/org1/layers/${layer}`, { method: 'PUT', headers: admin, body: JSON.stringify(doc) })).status

  t.test('metrics - deliveries and their latency, as Prometheus sees them', async (t) => {
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/c${i}`, { method: 'PUT', headers: admin, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from(`v${i}`).toString('base64') }) })
      t.equal(r.status, 204)
    }
    for (const id of ids) {
      for (let i = 0; i < 3; i++) {
        const url = `${ess.get(id)?.restUrl ?? ''}/api/v1/objects/conf/c${i}`
        await waitFor(`c${i} on ${id}`, async () => (await fetch(url, { headers: { authorization: basic(APP) } })).status === 200 ? true : undefined)
        t.equal((await fetch(`${url}/consumed`, { method: 'PUT', headers: { authorization: basic(APP) } })).status, 204)
      }
    }
    t.equal(await settles('sum(edgesync_css_edge_acks_total{job="css",state="consumed"})', (v) => v >= 6), 6, '6 consumed acks')
    t.equal(await settles('edgesync_css_publish_to_consumed_seconds_count{job="css"}', (v) => v >= 6), 6)
    const p99 = await settles('histogram_quantile(0.99, sum by (le) (edgesync_css_publish_to_delivered_seconds_bucket{job="css"}))', (v) => Number.isFinite(v))
    t.ok(p99 > 0 && p99 < 30, `p99 publish to delivered: ${p99} s`)
    t.equal(await settles('edgesync_css_nodes{job="css",state="online"}', (v) => v === 2), 2, 'both edges online')
    t.equal(await settles('edgesync_css_edges_connected{job="css"}', (v) => v === 2), 2)
    t.equal(await settles('sum(edgesync_http_request_duration_seconds_count{job="css",route="/api/v1/objects/:orgID/:objectType/:objectID",method="PUT",status="204"})', (v) => v >= 3), 3, 'REST requests by route pattern')
    t.equal(await settles('sum(edgesync_ess_objects{job="ess-n1",status="objconsumed"})', (v) => v >= 3), 3, 'what n1 holds')
    t.ok(await settles('edgesync_ess_connected{job="ess-n2",channel="mqtt"}', (v) => v === 1), 'n2 connected over MQTT')
    const text = await (await fetch(`${css.restUrl}/metrics`)).text()
    t.notMatch(text, /n1|n2/, 'no series or label names an edge')
  })

  t.test('metrics - chunked transfers and plugin states', async (t) => {
    // Larger than MaxInlineDataSize: each edge pulls it in chunks from the CSS.
    const big = Buffer.alloc(600 * 1024, 7)
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/blob/b1`, { method: 'PUT', headers: admin, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: big.toString('base64') }) })
    t.equal(r.status, 204)
    for (const id of ids) {
      const url = `${ess.get(id)?.restUrl ?? ''}/api/v1/objects/blob/b1/data`
      await waitFor(`b1 on ${id}`, async () => (await fetch(url, { headers: { authorization: basic(APP) } })).status === 200 ? true : undefined)
    }
    const down = await settles('edgesync_css_transfer_bytes_total{job="css",direction="down"}', (v) => v >= 2 * big.length)
    t.ok(down >= 2 * big.length, `the CSS served ${down} chunk bytes for two copies of ${big.length}`)
    t.ok(await settles('edgesync_ess_transfer_bytes_total{job="ess-n1"}', (v) => v >= big.length) >= big.length, 'n1 received them')
    t.equal(await settles('edgesync_css_transfers_active{job="css",direction="down"}', (v) => v === 0), 0, 'no transfer left open')
    t.equal(await settles('edgesync_ess_plugin_state{job="ess-n1",plugin="ems",state="running"}', (v) => v === 1), 1, 'the EMS plugin runs')
    t.equal(await settles('edgesync_ess_plugin_state{job="ess-n1",plugin="ems",state="failed"}', (v) => v === 0), 0)
    t.equal(await settles('edgesync_css_leader{job="css"}', (v) => v === 1), 1, 'a lone CSS holds the lease')
    t.ok(await settles('edgesync_css_lease_term{job="css"}', (v) => v >= 1) >= 1)
    t.ok(await settles('edgesync_process_resident_memory_bytes{job="css"}', (v) => v > 1e6) > 1e6, 'process figures are there')
  })

  t.test('metrics - a rollback is counted on the edge and at the CSS; freshness stays right', async (t) => {
    for (const id of ids) t.equal(await putLayer(`edge:${id}`, deviceLayer(devices.get(id)?.ports ?? { meter: 0, battery: 0, pv: 0 })), 200)
    t.equal(await putLayer('org', emsCfg), 200)
    t.equal(await settles('sum(edgesync_ems_configs_total{outcome="committed"})', (v) => v >= 2), 2, 'v1 committed on both edges')
    const layer = deviceLayer(devices.get('n1')?.ports ?? { meter: 0, battery: 0, pv: 0 }) as { modbus_devices: Array<{ connection: { port: number } }> }
    const device = layer.modbus_devices[1]
    if (device !== undefined) device.connection.port = await freePort() // nothing listens: the battery is gone
    t.equal(await putLayer('edge:n1', layer), 200)
    t.equal(await settles('edgesync_ems_configs_total{job="ess-n1",outcome="rolled_back"}', (v) => v >= 1), 1, 'n1 rolled back once')
    t.equal(await settles('edgesync_ems_rollback_seconds_count{job="ess-n1"}', (v) => v >= 1), 1)
    t.equal(await settles('edgesync_ess_plugin_objects_total{job="ess-n1",plugin="ems",verdict="refused"}', (v) => v >= 1), 1, 'the plugin refused it')
    t.equal(await settles('edgesync_ess_plugin_objects_total{job="ess-n2",plugin="ems",verdict="consumed"}', (v) => v >= 1), 1, 'n2 consumed v1')
    t.equal(await settles('edgesync_ems_edge_verdicts_total{job="css",verdict="rolled_back"}', (v) => v >= 1), 1, 'the CSS counted it')
    t.ok(await settles('sum(edgesync_ems_device_poll_errors_total{job="ess-n1",device="bms_main"})', (v) => v >= 1) >= 1, 'the failed polls, by device')
    t.equal(await settles('edgesync_ems_edges{job="css",freshness="fresh"}', (v) => v === 2), 2, 'n1 is behind for seconds, not an hour')
    t.equal(await settles('edgesync_ems_config_freshness_ratio{job="css"}', (v) => v === 1), 1)
  })
}

t.test('metrics - only loopback, or whoever has the metrics key; request ids go back and into the logs', async (t) => {
  const lines = captureLogger()
  const cfg = buildConfig({}, {}, { PersistenceRootPath: path.join(t.testdir(), 'keyed'), ListeningPort: 0, MqttListeningPort: 0, AdminKey: ADMIN.key, AdminSecret: ADMIN.secret, MetricsKey: 'scrape-me', LogLevel: 'debug' })
  const keyed = await startCloudSyncService(cfg, lines)
  t.teardown(() => keyed.close())
  const anon = await fetch(`${keyed.restUrl}/metrics`)
  t.equal(anon.status, 401)
  t.equal((await anon.json() as { code: string }).code, 'SYNC_ERR_UNAUTHENTICATED')
  t.equal((await fetch(`${keyed.restUrl}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
  const ok = await fetch(`${keyed.restUrl}/metrics`, { headers: { authorization: 'Bearer scrape-me' } })
  t.equal(ok.status, 200)
  t.match(await ok.text(), /edgesync_http_request_duration_seconds_bucket/)
  const traced = await fetch(`${keyed.restUrl}/api/v1/objects/org1/conf/none`, { headers: { authorization: basic(ADMIN), 'x-request-id': 'trace-abc-123' } })
  t.equal(traced.status, 404)
  t.equal(traced.headers.get('x-request-id'), 'trace-abc-123', 'the client\'s id comes back')
  t.equal((await traced.json() as { requestId: string }).requestId, 'trace-abc-123', 'and is in the problem body')
  t.ok(lines.lines.some((l) => l.meta.requestId === 'trace-abc-123'), 'and in the log line of that request')
  const fresh = await fetch(`${keyed.restUrl}/api/v1/health`, { headers: { authorization: basic(ADMIN), 'x-request-id': 'bad id with spaces' } })
  t.match(fresh.headers.get('x-request-id'), /^[0-9a-f-]{36}$/, 'an id that is not a plain token is replaced')
})
