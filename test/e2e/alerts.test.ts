/**
 * Operator alerts reach a real SMTP conversation (a listener in this test that speaks SMTP as a
 * mail server does) and a webhook receiver: when an edge rolls a config back (the e-mail names the
 * edge, the version and the reason), when an EMS alarm is raised on an edge, and when an edge goes
 * silent. `syncctl alerts list|test` see the same.
 */
import { createHmac } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import t from 'tap'
import { freePort } from '../../harness/ports.js'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { sampleEmsConfig } from '../helpers/ems.js'
import { deviceLayer, startEdgeDevices } from '../helpers/sim-devices.js'

/** An SMTP server's side of the conversation (RFC 5321), keeping each message it accepts. */
async function smtpListener (): Promise<{ port: number, mails: Array<{ from: string, to: string[], data: string }>, close: () => Promise<void> }> {
  const mails: Array<{ from: string, to: string[], data: string }> = []
  const server = net.createServer((s) => {
    let buf = ''
    let data: string | undefined
    let from = ''
    let to: string[] = []
    s.write('220 test.local ESMTP\r\n')
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      for (;;) {
        if (data !== undefined) {
          const end = buf.indexOf('\r\n.\r\n')
          if (end < 0) return
          data += buf.slice(0, end)
          buf = buf.slice(end + 5)
          // As a mail reader shows it: folded header lines joined, quoted-printable soft breaks removed.
          mails.push({ from, to, data: data.replace(/\r\n(?=[ \t])/g, '').replace(/=\r\n/g, '') })
          data = undefined
          s.write('250 2.0.0 queued\r\n')
          continue
        }
        const nl = buf.indexOf('\r\n')
        if (nl < 0) return
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 2)
        const verb = line.slice(0, 4).toUpperCase()
        if (verb === 'EHLO') s.write('250-test.local\r\n250 8BITMIME\r\n')
        else if (verb === 'HELO') s.write('250 test.local\r\n')
        else if (verb === 'MAIL') { from = line.slice(10).trim(); to = []; s.write('250 2.1.0 ok\r\n') } else if (verb === 'RCPT') { to.push(line.slice(8).trim()); s.write('250 2.1.5 ok\r\n') } else if (verb === 'DATA') { data = ''; s.write('354 go ahead\r\n') } else if (verb === 'QUIT') { s.end('221 2.0.0 bye\r\n') } else s.write('250 ok\r\n') // RSET, NOOP
      }
    })
    s.on('error', () => {})
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return { port, mails, close: async () => { await new Promise((resolve) => server.close(resolve)) } }
}

const smtp = await smtpListener()
t.teardown(() => smtp.close())
const hooks: Array<{ body: string, signature: string, event: string }> = []
const receiver = http.createServer((req, res) => {
  let b = ''
  req.on('data', (d: Buffer) => { b += d.toString() })
  req.on('end', () => {
    hooks.push({ body: b, signature: String(req.headers['x-sync-signature']), event: String(req.headers['x-sync-event']) })
    res.writeHead(204).end()
  })
})
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
t.teardown(() => { receiver.close() })
const hookUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/alerts`

const root = t.testdir()
const css = await startCss(t, path.join(root, 'css'), {
  AlertWebhooks: hookUrl,
  AlertEmailTo: 'ops@example.com',
  AlertEmailFrom: 'edgesync@example.com',
  SmtpUrl: `smtp://127.0.0.1:${smtp.port}`,
  AlertOfflineAfterSeconds: 3
})
const admin = { authorization: basic(ADMIN), 'content-type': 'application/json' }
const devices = await startEdgeDevices(t, 60000)
const e = await (await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/n1/enroll`, { method: 'POST', headers: { authorization: basic(ADMIN) } })).json() as { secret: string, signingKey: string }
const ess = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'n1', props: 'site=A' }, e.secret, { Plugins: 'ems', HeartbeatIntervalSeconds: 1, SigningKey: e.signingKey })
const putLayer = async (layer: string, doc: unknown): Promise<number> =>
  (await fetch(`${css.restUrl}/api/v1/ems/org1/layers/${layer}`, { method: 'PUT', headers: admin, body: JSON.stringify(doc) })).status
const cfg = sampleEmsConfig() as { core_cycle: { period_ms: number, health_window_ms?: number } }
cfg.core_cycle.period_ms = 200
cfg.core_cycle.health_window_ms = 800

t.test('alerts - an edge rolls a config back: e-mail and a signed webhook name the edge, the version and the reason', async (t) => {
  t.equal(await putLayer('edge:n1', deviceLayer(devices.ports)), 200)
  t.equal(await putLayer('org', cfg), 200)
  await waitFor('v1 running', async () => {
    const h = await (await fetch(`${ess.restUrl}/api/v1/health`, { headers: { authorization: basic(APP) } })).json() as { plugins: { ems: { activeVersion?: number } } }
    return h.plugins.ems.activeVersion === 1 ? true : undefined
  }, 15_000)
  const broken = deviceLayer(devices.ports) as { modbus_devices: Array<{ connection: { port: number } }> }
  const battery = broken.modbus_devices[1]
  if (battery !== undefined) battery.connection.port = await freePort()
  t.equal(await putLayer('edge:n1', broken), 200)
  const mail = await waitFor('the alert e-mail', async () => smtp.mails.find((m) => m.data.includes('refused')), 20_000)
  t.match(mail.to, ['<ops@example.com>'])
  t.match(mail.from, /edgesync@example\.com/)
  t.match(mail.data, /Subject: \[edgesync\] Edge edge\/n1 refused ems-config\/n1 version 2: rolled back to version 1: device bms_main/)
  t.match(mail.data, /edge: edge\/n1/)
  const hook = await waitFor('the alert webhook', async () => hooks.find((h) => h.event === 'alert.edge_refused'))
  const secret = (await readFile(path.join(root, 'css', 'css', 'webhook-secret'), 'utf8')).trim()
  t.equal(hook.signature, `sha256=${createHmac('sha256', secret).update(hook.body).digest('hex')}`, 'signed with the CSS webhook key')
  t.match(JSON.parse(hook.body), { kind: 'edge_refused', orgId: 'org1', edge: 'edge/n1', detail: { version: '2', instanceId: Number } })
})

t.test('alerts - an edge repeating the same refusal (as a hostile one would) raises it once', async (t) => {
  const before = hooks.filter((h) => h.event === 'alert.edge_refused').length
  const first = JSON.parse(hooks.find((h) => h.event === 'alert.edge_refused')?.body ?? '{}') as { detail: { objectType: string, objectId: string, instanceId: number } }
  // The same verdict again, through the CSS's ack path, three times.
  for (let i = 0; i < 3; i++) {
    await css.sync.onMessage('sync/v1/org1/edge/n1/up', Buffer.from(JSON.stringify({ v: 1, kind: 'ack', state: 'error', objectType: first.detail.objectType, objectId: first.detail.objectId, instanceId: first.detail.instanceId, message: 'rolled back again' })))
  }
  const list = await (await fetch(`${css.restUrl}/api/v1/alerts/org1`, { headers: admin })).json() as Array<{ kind: string }>
  t.equal(list.filter((a) => a.kind === 'edge_refused').length, 1, 'recorded once')
  t.equal(hooks.filter((h) => h.event === 'alert.edge_refused').length, before, 'sent once')
})

t.test('alerts - an EMS alarm raised on an edge is an alert', async (t) => {
  devices.battery.set('Soc', 12) // under alarm_soc_low's 20
  // (The broken config of the first test may have raised a device_fault alarm alert while it ran:
  // a real alarm too. This one is about the state-of-charge alarm.)
  const hook = await waitFor('alarm alert', async () => hooks.find((h) => h.event === 'alert.edge_alarm' && h.body.includes('alarm_soc_low')), 20_000)
  t.match(JSON.parse(hook.body), { edge: 'edge/n1', detail: { alarms: ['ems:alarm_soc_low'] } })
  await waitFor('alarm e-mail', async () => smtp.mails.find((m) => m.data.includes('alarm_soc_low')))
})

t.test('alerts - an edge silent longer than AlertOfflineAfterSeconds is reported once', async (t) => {
  await ess.close()
  const hook = await waitFor('offline alert', async () => hooks.find((h) => h.event === 'alert.edge_offline'), 20_000)
  t.match(JSON.parse(hook.body), { kind: 'edge_offline', edge: 'edge/n1' })
  const list = await (await fetch(`${css.restUrl}/api/v1/alerts/org1`, { headers: admin })).json() as Array<{ kind: string, target: string, summary: string }>
  t.same([...new Set(list.map((a) => a.kind))].sort(), ['edge_alarm', 'edge_offline', 'edge_refused'], 'alerts list: every kind, from the audit log')
  t.equal(list.filter((a) => a.kind === 'edge_offline').length, 1, 'once per silence')
  t.equal((await fetch(`${css.restUrl}/api/v1/alerts/*`, { headers: admin })).status, 200, 'fleet-wide alerts: org * for a sync admin')
})

t.test('alerts - a test alert goes through every channel and says how each went', async (t) => {
  const r = await fetch(`${css.restUrl}/api/v1/alerts/org1/test`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
  t.equal(r.status, 200)
  t.same(await r.json(), { webhooks: [{ url: hookUrl, ok: true }], email: { to: ['ops@example.com'], ok: true } })
  t.ok(smtp.mails.some((m) => m.data.includes('Test alert for org1')))
})
