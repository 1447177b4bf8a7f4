/**
 * EMS: one site change over N edges (real ESS instances with the EMS plugin in worker processes,
 * each with its own simulated Modbus devices). Reports change-to-in-force p50/p99/max (the first
 * battery setpoint written under the new threshold), change-to-committed (consumed at the CSS),
 * and the rollback time (failure detected to the previous version running) of edges given a
 * config that breaks their runtime. EMS_EDGES (default 100).
 */
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../harness/ports.js'
import { ADMIN_JSON as ADMIN, startBenchCss } from './lib/css.js'
import { pct } from './lib/load.js'
import { printTable, writeResult } from './lib/report.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const WORKERS = 2

function orgLayer (): Record<string, unknown> {
  return {
    core_cycle: { period_ms: 1000, health_window_ms: 2000 },
    scheduler: { controllers: [{ id: 'ctrlPeakShaving0', class: 'PeakShavingController', enabled: true, execution_order: 1, parameters: { threshold_watts: 50000 }, battery: 'bms_main', meter: 'grid' }] },
    modbus_devices: [
      { device_id: 'grid', profile: 'grid_meter', connection: { protocol: 'tcp', host: '127.0.0.1', port: 1, unit_id: 1 }, poll_groups: { fast: ['ActivePower'] } },
      { device_id: 'bms_main', profile: 'battery', connection: { protocol: 'tcp', host: '127.0.0.1', port: 2, unit_id: 1 }, poll_groups: { fast: ['ActivePower', 'Soc'] } }
    ],
    alarms: [{ id: 'soc_low', channel: 'bms_main/Soc', condition: '<', threshold: 20, severity: 'warning' }]
  }
}

export async function runEmsBench (n: number): Promise<void> {
  const css = await startBenchCss('aedes+local')
  const base = css.base
  const workers: ChildProcess[] = []
  const writes: Array<{ edge: string, value: number, at: number }> = []
  try {
    const edges = (await css.enroll(n)).map((e) => ({ ...e, site: 'A' }))
    const ports: Record<string, { meter: number, battery: number }> = {}
    await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
      const child = fork(path.join(HERE, 'ems-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      workers.push(child)
      await new Promise<void>((resolve, reject) => {
        child.on('message', (m: { cmd: string, message?: string, ports?: typeof ports, edge?: string, value?: number, at?: number }) => {
          if (m.cmd === 'started') { Object.assign(ports, m.ports); resolve() } else if (m.cmd === 'setpoint') writes.push({ edge: m.edge ?? '', value: m.value ?? 0, at: m.at ?? 0 }); else if (m.cmd === 'error') reject(new Error(m.message))
        })
        child.send({ cmd: 'start', broker: css.mqttUrl, org: 'bench', edges: edges.filter((_, i) => i % WORKERS === w) })
      })
    }))
    process.stderr.write(`ems bench: ${n} edges started\n`)
    for (const e of edges) {
      const p = ports[e.id]
      await fetch(`${base}/api/v1/ems/bench/layers/edge:${e.id}`, { method: 'PUT', headers: ADMIN, body: JSON.stringify({ modbus_devices: [{ device_id: 'grid', connection: { port: p?.meter } }, { device_id: 'bms_main', connection: { port: p?.battery } }] }) })
    }
    const waitAll = async (what: string, ok: (list: Array<{ edge: string, latest: number, status: string, runtime?: { lastRollbackMs?: number } }>) => boolean, ms = 300_000): Promise<Array<{ edge: string, latest: number, status: string, runtime?: { lastRollbackMs?: number } }>> => {
      const deadline = Date.now() + ms
      for (;;) {
        const list = await (await fetch(`${base}/api/v1/ems/bench/status`, { headers: ADMIN })).json() as Array<{ edge: string, latest: number, status: string, runtime?: { lastRollbackMs?: number } }>
        if (ok(list)) return list
        if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    }
    const put = await fetch(`${base}/api/v1/ems/bench/layers/org`, { method: 'PUT', headers: ADMIN, body: JSON.stringify(orgLayer()) })
    if (put.status !== 200) throw new Error(`org layer: ${put.status} ${await put.text()}`)
    await waitAll('initial config committed', (l) => l.length === n && l.every((x) => x.status === 'consumed'))
    process.stderr.write('ems bench: initial config running everywhere; changing site A\n')
    const t0 = Date.now()
    const change = await fetch(`${base}/api/v1/ems/bench/layers/site:A`, { method: 'PUT', headers: ADMIN, body: JSON.stringify({ scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: 45000 } }] } }) })
    if (change.status !== 200) throw new Error(`site change: ${change.status}`)
    const committed = await waitAll('site change committed', (l) => l.every((x) => x.latest === 2 && x.status === 'consumed'))
    const inForce = edges.map((e) => (writes.find((w) => w.edge === e.id && w.at >= t0 && w.value === 15000)?.at ?? Infinity) - t0).sort((a, b) => a - b)
    const times = await (await Promise.all(edges.map(async (e) => await (await fetch(`${base}/api/v1/objects/bench/ems-config/${e.id}/destinations`, { headers: ADMIN })).json() as Array<{ times: { consumed?: string } }>)))
    const commit = times.map((d) => Date.parse(d[0]?.times.consumed ?? '') - t0).sort((a, b) => a - b)
    // Rollback: a tenth of the edges get a battery port nothing listens on.
    const broken = edges.slice(0, Math.max(1, Math.floor(n / 10)))
    const dead = await freePort()
    for (const e of broken) {
      await fetch(`${base}/api/v1/ems/bench/layers/edge:${e.id}`, { method: 'PUT', headers: ADMIN, body: JSON.stringify({ modbus_devices: [{ device_id: 'grid', connection: { port: ports[e.id]?.meter } }, { device_id: 'bms_main', connection: { port: dead } }] }) })
    }
    const ids = new Set(broken.map((e) => e.id))
    const rolled = await waitAll('rollbacks reported', (l) => l.filter((x) => ids.has(x.edge)).every((x) => x.status === 'error' && x.runtime?.lastRollbackMs !== undefined), 120_000)
    const rollbackMs = rolled.filter((x) => ids.has(x.edge)).map((x) => x.runtime?.lastRollbackMs ?? 0).sort((a, b) => a - b)
    const row = {
      edges: n,
      inForceP50Ms: pct(inForce, 0.5),
      inForceP99Ms: pct(inForce, 0.99),
      inForceMaxMs: inForce.at(-1) ?? 0,
      committedP50Ms: pct(commit, 0.5),
      committedP99Ms: pct(commit, 0.99),
      allCommitted: committed.every((x) => x.status === 'consumed') ? 'yes' : 'no',
      rollbacks: `${rollbackMs.length}/${broken.length}`,
      rollbackP50Ms: pct(rollbackMs, 0.5),
      rollbackMaxMs: rollbackMs.at(-1) ?? 0
    }
    printTable('EMS: one site change over N edges (1 s core cycle, 2 s health window)', [row])
    await writeResult('ems', { rows: [row] })
  } finally {
    await Promise.all(workers.map(async (w) => { const gone = new Promise((resolve) => w.once('exit', resolve)); w.send({ cmd: 'stop' }); await gone }))
    await css.stop()
  }
}
