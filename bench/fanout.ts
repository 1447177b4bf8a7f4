/**
 * Fan-out: one CSS (child process) and N lightweight edges in worker processes, on embedded Aedes +
 * local store or on Mosquitto + mongo (FerretDB). Publishes one small object to all N and reports
 * publish-to-consumed p50/p99/max (the CSS's own per-destination timestamps), deliveries/s, CSS RSS,
 * CPU and memory per connected edge. The raw baseline (`raw`) is the same fan-out with plain MQTT
 * on the same broker software and the same topics: one QoS 1 publish to N subscribers, each
 * answering with one QoS 1 publish; `fanout` reports our rate as a share of it.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { silentLogger } from '../src/common/log.js'
import { typeDownTopic, UP_WILDCARD } from '../src/common/protocol/topics.js'
import { mosquittoAclText, mosquittoPasswordLine } from '../src/security/index.js'
import { connectMqtt, startEmbeddedBroker } from '../src/transport/index.js'
import { ADMIN_AUTH, ADMIN_JSON, cpuSeconds, rssMB, startBenchCss, type BenchNode, type Variant } from './lib/css.js'
import { findBinary } from '../harness/find-binary.js'
import { pct } from './lib/load.js'
import { startMosquitto } from '../harness/mosquitto.js'
import { freePort } from '../harness/ports.js'
import { printTable, writeResult } from './lib/report.js'
import type { WorkerCommand } from './fanout-worker.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const EDGES_PER_WORKER = 5000

export interface EdgeWorkers { procs: ChildProcess[], send: (m: WorkerCommand, until: string) => Promise<void> }

/** Worker processes holding `nodes` (as many as needed, at least 2), connected and registered. */
export async function startEdgeWorkers (mode: 'sync' | 'raw', url: string, nodes: BenchNode[]): Promise<EdgeWorkers> {
  const count = Math.max(2, Math.ceil(nodes.length / EDGES_PER_WORKER))
  const procs = Array.from({ length: count }, () => fork(path.join(HERE, 'fanout-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
  const send = async (m: WorkerCommand | ((w: number) => WorkerCommand), until: string): Promise<void> => {
    await Promise.all(procs.map(async (p, w) => {
      await new Promise<void>((resolve, reject) => {
        const on = (r: { cmd: string, message?: string }): void => {
          if (r.cmd === until) { p.off('message', on); resolve() } else if (r.cmd === 'error') reject(new Error(r.message))
        }
        p.on('message', on)
        p.send(typeof m === 'function' ? m(w) : m)
      })
    }))
  }
  await send((w) => ({ cmd: 'start', mode, url, org: 'bench', type: 'edge', nodes: nodes.filter((_, i) => i % count === w) }), 'started')
  return { procs, send }
}

export async function stopEdgeWorkers (w: EdgeWorkers): Promise<void> {
  await Promise.all(w.procs.map(async (p) => { const gone = new Promise((resolve) => p.once('exit', resolve)); p.send({ cmd: 'stop' }); await gone }))
}

export async function sleep (ms: number): Promise<void> { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Polls the CSS until every node is online; returns how long it took. */
export async function waitOnline (base: string, n: number, timeoutMs = 600_000): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    const list = await (await fetch(`${base}/api/v1/destinations/bench`, { headers: { authorization: ADMIN_AUTH } })).json() as Array<{ online: boolean }>
    if (list.filter((x) => x.online).length === n) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`only ${list.filter((x) => x.online).length}/${n} online after ${timeoutMs / 1000} s`)
    await sleep(Math.max(100, n / 20))
  }
}

/** Polls an object's destinations until all `n` are consumed; returns each one's consumed time (ms since the epoch). */
export async function waitConsumed (base: string, id: string, n: number, timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await fetch(`${base}/api/v1/objects/bench/conf/${id}/destinations`, { headers: { authorization: ADMIN_AUTH } })
    if (r.status !== 200) throw new Error(`destinations of ${id}: ${r.status} ${await r.text()}`)
    const records = await r.json() as Array<{ status: string, times: Record<string, string> }>
    const done = records.filter((r) => r.status === 'consumed')
    if (done.length === n) return done.map((r) => Date.parse(r.times.consumed ?? ''))
    if (Date.now() > deadline) throw new Error(`only ${done.length}/${n} consumed after ${timeoutMs / 1000} s`)
    // Each poll serializes every record, competing with the fan-out for the CPU; the consumed times
    // are the CSS's own, so polling less often does not change them.
    await sleep(Math.max(250, n / 5))
  }
}

export async function publish (base: string, id: string, body = '{"threshold":45000}'): Promise<void> {
  const put = await fetch(`${base}/api/v1/objects/bench/conf/${id}`, { method: 'PUT', headers: ADMIN_JSON, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from(body).toString('base64') }) })
  if (put.status !== 204) throw new Error(`publish failed: ${put.status} ${await put.text()}`)
}

async function sync (variant: Variant, n: number): Promise<Record<string, number | string>> {
  const css = await startBenchCss(variant)
  try {
    const idleRss = await rssMB(css.pid)
    const nodes = await css.enroll(n)
    const c0 = Date.now()
    const workers = await startEdgeWorkers('sync', css.mqttUrl, nodes)
    await waitOnline(css.base, n)
    process.stderr.write(`fanout: ${n} edges connected and registered in ${((Date.now() - c0) / 1000).toFixed(1)} s (50 connects in flight per worker)\n`)
    await sleep(1000)
    const connectedRss = await rssMB(css.pid)
    // ROUNDS objects one after another to the same connected fleet; the median round (by
    // deliveries/s) is reported, the same as for raw: single rounds on 2 shared cores vary by ±10%.
    const rounds: Array<Record<string, number>> = []
    for (let r = 1; r <= ROUNDS; r++) {
      const cpu0 = await cpuSeconds(css.pid)
      const t0 = Date.now()
      await publish(css.base, `c${r}`)
      const lat = (await waitConsumed(css.base, `c${r}`, n, 600_000)).map((t) => t - t0).sort((a, b) => a - b)
      const cpu = (await cpuSeconds(css.pid)) - cpu0
      rounds.push({
        p50Ms: pct(lat, 0.5),
        p99Ms: pct(lat, 0.99),
        maxMs: lat.at(-1) ?? 0,
        consumed: lat.length,
        deliveriesPerS: Math.round(n / ((lat.at(-1) ?? 1) / 1000)),
        cssCpuS: Number(cpu.toFixed(2))
      })
    }
    const peakRss = await rssMB(css.pid)
    await stopEdgeWorkers(workers)
    return {
      ...median(rounds, 'deliveriesPerS'),
      cssIdleRssMB: idleRss,
      cssRssMB: peakRss,
      kBPerEdge: Math.round(((connectedRss - idleRss) * 1024) / n)
    }
  } catch (err) {
    // Said at once: stopping the CSS after a failure may take a while.
    process.stderr.write(`fanout: ${variant}, N=${n} failed: ${String(err)}\n`)
    throw err
  } finally {
    await css.stop()
  }
}

/** FANOUT_ROUNDS (3): fan-outs per connected fleet, ours and raw's; the median is reported. */
const ROUNDS = Math.max(1, Number(process.env.FANOUT_ROUNDS ?? 3))

/** The round with the median `key`. */
function median (rounds: Array<Record<string, number>>, key: string): Record<string, number | string> {
  const sorted = [...rounds].sort((a, b) => (a[key] ?? 0) - (b[key] ?? 0))
  // Every round's figure too, in order, so the spread is on record.
  return { ...sorted[Math.floor(sorted.length / 2)], [`${key}Rounds`]: rounds.map((r) => r[key]).join('/') }
}

/** The raw baseline on the variant's broker software, same topics and per-node credentials. */
export async function raw (variant: Variant, n: number): Promise<Record<string, number | string>> {
  const nodes = Array.from({ length: n }, (_, i) => ({ id: `r${i}`, secret: `raw-secret-${i}` }))
  let url: string
  let publisher: { username?: string, password?: string } = {}
  let stopBroker: () => Promise<void>
  if (variant === 'mosquitto+mongo') {
    const bin = findBinary('mosquitto')
    if (bin === undefined) throw new Error('mosquitto not found')
    const keys = nodes.map((x) => ({ orgId: 'bench', destinationType: 'edge', destinationId: x.id }))
    const mosq = await startMosquitto(bin, [mosquittoPasswordLine('css', 'css-secret'), ...nodes.map((x) => mosquittoPasswordLine(`bench/edge/${x.id}`, x.secret))].join('\n'), mosquittoAclText('css', keys))
    url = mosq.url
    publisher = { username: 'css', password: 'css-secret' }
    stopBroker = mosq.stop
  } else {
    const port = await freePort()
    const broker = await startEmbeddedBroker({ host: '127.0.0.1', port, log: silentLogger, auth: { authenticate: async (l) => ({ ok: true, username: l.username ?? 'anon' }), mayPublish: () => true, maySubscribe: () => true } })
    url = `mqtt://127.0.0.1:${port}`
    stopBroker = async () => { await broker.close() }
  }
  try {
    const workers = await startEdgeWorkers('raw', url, nodes)
    let lat: number[] = []
    let t0 = 0
    let done: () => void = () => {}
    const pub = await connectMqtt({
      url,
      clientId: 'raw-publisher',
      ...publisher,
      subscriptions: [UP_WILDCARD],
      log: silentLogger,
      onMessage: async () => { lat.push(performance.now() - t0); if (lat.length === n) done() }
    })
    const rounds: Array<Record<string, number>> = []
    for (let r = 1; r <= ROUNDS; r++) {
      lat = []
      const all = new Promise<void>((resolve) => { done = resolve })
      t0 = performance.now()
      await pub.publish(typeDownTopic('bench', 'edge'), Buffer.from(JSON.stringify({ v: 1, kind: 'update', meta: { objectID: `x${r}`, objectType: 'conf' }, data: 'eyJ0aHJlc2hvbGQiOjQ1MDAwfQ==' })))
      await all
      const total = performance.now() - t0
      lat.sort((a, b) => a - b)
      rounds.push({ rawP50Ms: Math.round(pct(lat, 0.5)), rawP99Ms: Math.round(pct(lat, 0.99)), rawMaxMs: Math.round(lat.at(-1) ?? 0), rawPerS: Math.round(n / (total / 1000)) })
    }
    await pub.close()
    await stopEdgeWorkers(workers)
    return median(rounds, 'rawPerS')
  } finally {
    await stopBroker()
  }
}

/**
 * `--contended`: a fixed CPU load beside a run, `hogs` processes each spinning on a core, started
 * before the run (ours, and the raw baseline alike) and killed after it. A CSS in production never
 * has the machine to itself; with scarce CPU, the sync path's own CPU per delivery decides.
 */
export async function withCpuHogs<T> (hogs: number, run: () => Promise<T>): Promise<T> {
  const procs = Array.from({ length: hogs }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }))
  try {
    return await run()
  } finally {
    for (const p of procs) p.kill('SIGKILL')
  }
}

export async function runFanoutBench (sizes: number[], variants: Variant[], withRaw = true, hogs = 0): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  for (const variant of variants) {
    for (const n of sizes) {
      process.stderr.write(`fanout: ${variant}, N=${n}${hogs > 0 ? `, ${hogs} CPU hog(s) running` : ''}...\n`)
      const s = await withCpuHogs(hogs, async () => await sync(variant, n))
      const r = withRaw ? await withCpuHogs(hogs, async () => await raw(variant, n)) : {}
      rows.push({ variant, edges: n, hogs, ...s, ...r, ...(r.rawPerS === undefined ? {} : { ofRawPct: Math.round((100 * Number(s.deliveriesPerS ?? 0)) / Number(r.rawPerS)) }) })
    }
  }
  const load = hogs > 0 ? `, contended: ${hogs} process(es) spinning beside both runs` : ''
  printTable(`fanout: one small object to N edges, publish -> consumed at the CSS (lightweight edges in worker processes${load})`, rows)
  await writeResult(hogs > 0 ? 'fanout-contended' : 'fanout', { edgesPerWorker: EDGES_PER_WORKER, hogs, rows })
}

export async function runRawBench (sizes: number[], variants: Variant[]): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  for (const variant of variants) {
    for (const n of sizes) {
      process.stderr.write(`raw: ${variant}, N=${n}...\n`)
      rows.push({ variant, edges: n, ...await raw(variant, n) })
    }
  }
  printTable('raw: one QoS 1 publish to N subscribers, each answering with one QoS 1 publish (no sync logic)', rows)
  await writeResult('raw', { edgesPerWorker: EDGES_PER_WORKER, rows })
}
