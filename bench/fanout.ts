/**
 * Fan-out: one CSS (child process: embedded broker, local store) and N lightweight edges in worker
 * processes. Publishes one small object to all N and reports publish-to-consumed p50/p99/max,
 * deliveries/s, CSS RSS and memory per connected edge. The raw baseline runs the same N clients on
 * the same broker code (an embedded Aedes with no sync logic): one QoS 1 publish to N subscribers,
 * each answering with one QoS 1 publish; our rate is reported as a ratio of it.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { silentLogger } from '../src/common/log.js'
import { connectMqtt } from '../src/transport/index.js'
import { startEmbeddedBroker } from '../src/transport/index.js'
import { freePort } from './lib/ports.js'
import { printTable, writeResult } from './lib/report.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const WORKERS = 2
const ADMIN = 'Basic ' + Buffer.from('bench:bench-secret').toString('base64')

function pct (sorted: number[], p: number): number { return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0 }

async function rssMB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024)
}

async function cpuSeconds (pid: number): Promise<number> {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
  return (Number(stat[11]) + Number(stat[12])) / 100
}

async function startWorkers (mode: 'sync' | 'raw', url: string, nodes: Array<{ id: string, secret: string }>): Promise<ChildProcess[]> {
  const workers: ChildProcess[] = []
  await Promise.all(Array.from({ length: WORKERS }, async (_, w) => {
    const child = fork(path.join(HERE, 'fanout-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    workers.push(child)
    await new Promise<void>((resolve, reject) => {
      child.on('message', (m: { cmd: string, message?: string }) => { m.cmd === 'started' ? resolve() : reject(new Error(m.message)) })
      child.send({ cmd: 'start', mode, url, org: 'bench', type: 'edge', nodes: nodes.filter((_, i) => i % WORKERS === w) })
    })
  }))
  return workers
}

async function stopWorkers (workers: ChildProcess[]): Promise<void> {
  await Promise.all(workers.map(async (w) => { const gone = new Promise((resolve) => w.once('exit', resolve)); w.send({ cmd: 'stop' }); await gone }))
}

async function raw (n: number): Promise<Record<string, number>> {
  const port = await freePort()
  const broker = await startEmbeddedBroker({ host: '127.0.0.1', port, log: silentLogger, auth: { authenticate: async (u) => u ?? 'anon', mayPublish: () => true, maySubscribe: () => true } })
  const url = `mqtt://127.0.0.1:${port}`
  const workers = await startWorkers('raw', url, Array.from({ length: n }, (_, i) => ({ id: `r${i}`, secret: '' })))
  const lat: number[] = []
  let t0 = 0
  let done: () => void = () => {}
  const all = new Promise<void>((resolve) => { done = resolve })
  const pub = await connectMqtt({
    url,
    clientId: 'raw-pub',
    subscriptions: ['raw/up'],
    log: silentLogger,
    onMessage: async () => { lat.push(performance.now() - t0); if (lat.length === n) done() }
  })
  t0 = performance.now()
  await pub.publish('raw/down', Buffer.from(JSON.stringify({ v: 1, kind: 'update', meta: { objectID: 'x', objectType: 'conf' }, data: 'aGVsbG8=' })))
  await all
  const total = performance.now() - t0
  await pub.close()
  await stopWorkers(workers)
  await broker.close()
  lat.sort((a, b) => a - b)
  return { rawP50Ms: Math.round(pct(lat, 0.5)), rawP99Ms: Math.round(pct(lat, 0.99)), rawMaxMs: Math.round(lat.at(-1) ?? 0), rawPerS: Math.round(n / (total / 1000)) }
}

async function sync (n: number): Promise<Record<string, number>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-fanout-'))
  const restPort = await freePort()
  const mqttPort = await freePort()
  const css = spawn(process.execPath, [path.join(HERE, '..', 'cmd', 'css.js')], {
    env: { ...process.env, SYNC_CONF: '/nonexistent', LOG_LEVEL: 'error', PERSISTENCE_ROOT_PATH: dir, LISTENING_PORT: String(restPort), MQTT_LISTENING_PORT: String(mqttPort), ADMIN_KEY: 'bench', ADMIN_SECRET: 'bench-secret', RATE_LIMIT_PER_SECOND: '100000' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  await new Promise<void>((resolve) => css.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve() }))
  const base = `http://127.0.0.1:${restPort}`
  const pid = css.pid ?? 0
  try {
    const idleRss = await rssMB(pid)
    const nodes: Array<{ id: string, secret: string }> = []
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${base}/api/v1/nodes/bench/edge/e${i}/enroll`, { method: 'POST', headers: { authorization: ADMIN } })
      nodes.push({ id: `e${i}`, secret: ((await r.json()) as { secret: string }).secret })
    }
    const workers = await startWorkers('sync', `mqtt://127.0.0.1:${mqttPort}`, nodes)
    for (;;) {
      const list = await (await fetch(`${base}/api/v1/destinations/bench`, { headers: { authorization: ADMIN } })).json() as unknown[]
      if (list.length === n) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await new Promise((resolve) => setTimeout(resolve, 500))
    const connectedRss = await rssMB(pid)
    const cpu0 = await cpuSeconds(pid)
    const t0 = Date.now()
    const put = await fetch(`${base}/api/v1/objects/bench/conf/c1`, { method: 'PUT', headers: { authorization: ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from('{"threshold":45000}').toString('base64') }) })
    if (put.status !== 204) throw new Error(`publish failed: ${put.status}`)
    let records: Array<{ status: string, times: Record<string, string> }> = []
    let peakRss = connectedRss
    const deadline = Date.now() + 120_000
    for (;;) {
      records = await (await fetch(`${base}/api/v1/objects/bench/conf/c1/destinations`, { headers: { authorization: ADMIN } })).json() as typeof records
      peakRss = Math.max(peakRss, await rssMB(pid))
      if (records.length === n && records.every((r) => r.status === 'consumed')) break
      if (Date.now() > deadline) throw new Error(`only ${records.filter((r) => r.status === 'consumed').length}/${n} consumed after 120 s`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const cpu = (await cpuSeconds(pid)) - cpu0
    const lat = records.map((r) => Date.parse(r.times.consumed ?? '') - t0).sort((a, b) => a - b)
    await stopWorkers(workers)
    return {
      p50Ms: pct(lat, 0.5),
      p99Ms: pct(lat, 0.99),
      maxMs: lat.at(-1) ?? 0,
      deliveriesPerS: Math.round(n / ((lat.at(-1) ?? 1) / 1000)),
      cssIdleRssMB: idleRss,
      cssRssMB: peakRss,
      kBPerEdge: Math.round(((connectedRss - idleRss) * 1024) / n),
      cssCpuS: Number(cpu.toFixed(2))
    }
  } finally {
    css.kill('SIGTERM')
    await new Promise((resolve) => css.once('exit', resolve))
    await rm(dir, { recursive: true, force: true })
  }
}

export async function runFanoutBench (sizes: number[]): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  for (const n of sizes) {
    process.stderr.write(`fanout: N=${n} (sync)...\n`)
    const s = await sync(n)
    process.stderr.write(`fanout: N=${n} (raw)...\n`)
    const r = await raw(n)
    rows.push({ edges: n, ...s, ...r, rawOverSync: Number((r.rawPerS! / s.deliveriesPerS!).toFixed(1)) })
  }
  printTable('fanout: one small object to N edges, publish -> consumed (embedded Aedes, local store, 2 worker processes of edges)', rows)
  await writeResult('fanout', { workers: WORKERS, rows })
}
