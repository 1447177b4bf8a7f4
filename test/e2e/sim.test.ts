/**
 * `syncctl sim` as a user runs it: a real process with its own CSS (--with-css), 5 edges in 2
 * sites, each a real ESS with the EMS plugin polling its own simulated Modbus TCP devices. A site
 * change reaches exactly that site's edges (seen in the battery setpoints their controllers write),
 * and Ctrl-C leaves no process and no listening port behind.
 */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ModbusConnection } from '../../src/ems/edge/modbus.js'
import { loadProfiles } from '../../src/ems/common/profiles.js'

interface Ready {
  rest: string
  broker: string
  credentials: string
  workers: number[]
  edges: Array<{ edge: string, site: string, online: boolean, version?: number, status?: string, ports: Record<string, number> }>
}

const SYNCCTL = fileURLToPath(new URL('../../cmd/syncctl.ts', import.meta.url))
const battery = loadProfiles().get('battery')!
const SET_POWER = battery.channels.SetPower!

async function refused (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', () => { resolve(true) })
  })
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

t.test('syncctl sim: 5 edges online, a site change in force on its edges, clean shutdown', async (t) => {
  const child = spawn(process.execPath, [...process.execArgv, SYNCCTL, 'sim', '--edges', '5', '--sites', '2', '--with-css', '--css-port', '0', '--mqtt-port', '0', '--cycle-ms', '500', '--json', '--report-seconds', '3'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } })
  let err = ''
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const ready = await new Promise<Ready>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { reject(new Error(`sim not ready after 120 s: ${err}`)) }, 120_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line !== undefined) { clearTimeout(timer); resolve(JSON.parse(line) as Ready) }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`sim exited with ${String(code)}: ${err}`)) })
  })

  t.same(ready.edges.map((e) => e.edge), ['edge0', 'edge1', 'edge2', 'edge3', 'edge4'])
  t.same(ready.edges.map((e) => e.site), ['site0', 'site1', 'site0', 'site1', 'site0'], 'placed in sites round robin')
  t.ok(ready.edges.every((e) => e.online && e.status === 'consumed' && e.version === 1), 'all online, each running its first config')
  const ports = ready.edges.flatMap((e) => Object.values(e.ports))
  t.equal(ports.length, 25, 'five devices per edge')
  t.equal(new Set(ports).size, 25, 'each on its own port')

  const saved = JSON.parse(await readFile(ready.credentials, 'utf8')) as { appKey: string, secret: string }
  const headers = { authorization: 'Basic ' + Buffer.from(`${saved.appKey}:${saved.secret}`).toString('base64'), 'content-type': 'application/json' }
  const nodes = await (await fetch(`${ready.rest}/api/v1/users/sim`, { headers })).json() as Array<{ appKey: string }>
  t.equal(nodes.filter((n) => /^sim\/edge\/edge\d$/.test(n.appKey)).length, 5, 'every edge enrolled with its own identity in the CSS')

  const setpoint = async (port: number): Promise<number> => {
    const c = new ModbusConnection('127.0.0.1', port)
    try { return await c.read(1, SET_POWER) } finally { c.close() }
  }
  const waitSetpoints = async (edges: Ready['edges'], ok: (v: number) => boolean, what: string): Promise<number[]> => {
    const deadline = Date.now() + 30_000
    for (;;) {
      const v = await Promise.all(edges.map(async (e) => await setpoint(e.ports.bms_main ?? 0)))
      if (v.every(ok)) return v
      if (Date.now() > deadline) { t.fail(`${what}: ${v.join(', ')}`); return v }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  // Balancing against a 1 MW import target makes every controller ask to charge at about -1 MW.
  const site0 = ready.edges.filter((e) => e.site === 'site0')
  const site1 = ready.edges.filter((e) => e.site === 'site1')
  await waitSetpoints(ready.edges, (v) => v > -100_000, 'every battery setpoint at the org default (balance to 0 W)')
  // Charging at 1 MW from the grid needs the peak cap (4 kW in the org layer) lifted too: peak
  // shaving limits grid import whatever causes it.
  const controllers = [{ id: 'ctrlBalancing0', parameters: { target_grid_power: 1_000_000 } }, { id: 'ctrlPeakShaving0', parameters: { threshold_watts: 2_000_000 } }]
  const change = await fetch(`${ready.rest}/api/v1/ems/sim/layers/site:site0`, { method: 'PUT', headers, body: JSON.stringify({ scheduler: { controllers } }) })
  t.equal(change.status, 200)
  t.same(((await change.json()) as { published: Array<{ edge: string }> }).published.map((p) => p.edge).sort(), ['edge0', 'edge2', 'edge4'], 'the site change is published to its three edges')
  await waitSetpoints(site0, (v) => v < -900_000, 'site0 batteries charging at the new target')
  t.pass('the site change is in force on every edge of site0')
  t.ok((await Promise.all(site1.map(async (e) => await setpoint(e.ports.bms_main ?? 0)))).every((v) => v > -100_000), 'site1 edges keep the org default')
  const deadline = Date.now() + 30_000
  let status: Array<{ edge: string, latest: number, status: string }> = []
  while (Date.now() < deadline) {
    status = await (await fetch(`${ready.rest}/api/v1/ems/sim/status`, { headers })).json() as typeof status
    if (status.filter((s) => s.latest === 2 && s.status === 'consumed').length === 3) break
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  t.same(status.filter((s) => s.latest === 2 && s.status === 'consumed').map((s) => s.edge).sort(), ['edge0', 'edge2', 'edge4'], 'site0 edges committed version 2 (health window passed)')

  child.kill('SIGINT')
  t.equal(await exited, 0, 'Ctrl-C: the simulator exits 0')
  t.match(err, /Stopped\./)
  t.ok(ready.workers.length > 0 && ready.workers.every((pid) => !alive(pid)), 'no worker process left')
  const rest = Number(new URL(ready.rest).port)
  const mqtt = Number(new URL(ready.broker).port)
  const open = []
  for (const p of [rest, mqtt, ...ports]) if (!await refused(p)) open.push(p)
  t.same(open, [], 'no port left listening (CSS REST, broker, 25 devices)')
})
