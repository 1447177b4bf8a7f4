/**
 * Large objects: one object of LARGE_BENCH_MB (default 1,024 MiB) to LARGE_BENCH_EDGES (default
 * 10) ESS processes, with a CSS process on the embedded broker and the local store, then on the
 * mongo store (FerretDB). Reports total time (upload done to last edge delivered), aggregate MB/s
 * delivered, and peak RSS (VmHWM) of the CSS and of the largest ESS. Goal: CSS peak under 256 MB
 * whatever the object size and node count.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { findBinary } from '../harness/find-binary.js'
import { ferretBackend, startFerretDb } from '../harness/ferretdb.js'
import { cpuSeconds, peakRssMB } from '../src/common/proc-stats.js'
import { freePort } from '../harness/ports.js'
import { printTable, writeResult } from './lib/report.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ADMIN = 'Basic ' + Buffer.from('bench:bench-secret').toString('base64')
const MB = Number(process.env.LARGE_BENCH_MB ?? 1024)
const EDGES = Number(process.env.LARGE_BENCH_EDGES ?? 10)

async function start (which: 'css' | 'ess', env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(HERE, '..', 'cmd', `${which}.js`)], { env: { ...process.env, SYNC_CONF: '/nonexistent', LOG_LEVEL: 'error', ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve() })
    child.once('exit', (code) => reject(new Error(`${which} exited with ${String(code)}`)))
  })
  return child
}

async function * data (size: number): AsyncGenerator<Buffer> {
  const block = Buffer.alloc(1024 * 1024)
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff
  for (let off = 0; off < size; off += block.length) {
    const b = Buffer.from(block.subarray(0, Math.min(block.length, size - off)))
    b.writeUInt32BE(off / block.length, 0) // every block differs
    yield b
  }
}

const COPY = path.join(HERE, 'lib', 'http-copy.js')

/** Runs a child to its end; its stdout. */
async function runChild (args: string[]): Promise<string> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`${args.join(' ')} exited with ${String(code)}`)
  return out
}

/**
 * The limit on this machine, in the same run: the same bytes downloaded by EDGES processes at once
 * over plain HTTP from one server process, each writing, hashing and fsyncing its copy.
 */
async function plainHttp (): Promise<Record<string, string | number>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-large-http-'))
  let server: ChildProcess | undefined
  try {
    const file = path.join(dir, 'object')
    const fh = await open(file, 'w', 0o600)
    for await (const b of data(MB * 1024 * 1024)) await fh.write(b)
    await fh.sync()
    await fh.close()
    const srv = spawn(process.execPath, [COPY, 'serve', file], { stdio: ['ignore', 'pipe', 'inherit'] })
    server = srv
    const port = await new Promise<number>((resolve, reject) => {
      srv.stdout.on('data', (d: Buffer) => { const m = /ready (\d+)/.exec(d.toString()); if (m !== null) resolve(Number(m[1])) })
      srv.once('exit', (code) => { reject(new Error(`http server exited with ${String(code)}`)) })
    })
    process.stderr.write(`large bench: ${EDGES} plain HTTP downloads of ${MB} MiB at once (the limit)...\n`)
    const t0 = Date.now()
    await Promise.all(Array.from({ length: EDGES }, async (_, i) => await runChild([COPY, 'fetch', `http://127.0.0.1:${port}/`, path.join(dir, `copy${i}`)])))
    const s = (Date.now() - t0) / 1000
    return { storage: 'plain HTTP (limit)', MiB: MB, edges: EDGES, deliverS: Number(s.toFixed(1)), deliveredMBps: Math.round((MB * EDGES) / s) }
  } finally {
    server?.kill('SIGTERM')
    await rm(dir, { recursive: true, force: true })
  }
}

async function run (storage: 'local' | 'mongo'): Promise<Record<string, string | number>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-large-'))
  const procs: ChildProcess[] = []
  let stopDb = async (): Promise<void> => {}
  try {
    const extra: Record<string, string> = {}
    if (storage === 'mongo') {
      const bin = findBinary('ferretdb')
      if (bin === undefined) throw new Error('ferretdb not found: run .ci/install-ferretdb.sh')
      const db = await startFerretDb(bin, { backend: ferretBackend() })
      stopDb = db.stop
      Object.assign(extra, { STORAGE_PROVIDER: 'mongo', MONGO_URI: db.uri, MONGO_DB_NAME: 'large' })
    }
    const restPort = await freePort()
    const mqttPort = await freePort()
    const css = await start('css', { PERSISTENCE_ROOT_PATH: path.join(dir, 'css'), LISTENING_PORT: String(restPort), MQTT_LISTENING_PORT: String(mqttPort), ADMIN_KEY: 'bench', ADMIN_SECRET: 'bench-secret', RATE_LIMIT_PER_SECOND: '100000', ...extra })
    procs.push(css)
    const base = `http://127.0.0.1:${restPort}`
    const edges: ChildProcess[] = []
    for (let i = 0; i < EDGES; i++) {
      const r = await fetch(`${base}/api/v1/nodes/bench/edge/e${i}/enroll`, { method: 'POST', headers: { authorization: ADMIN } })
      const secret = ((await r.json()) as { secret: string }).secret
      const e = await start('ess', { NODE_TYPE: 'ESS', ORG_ID: 'bench', DESTINATION_TYPE: 'edge', DESTINATION_ID: `e${i}`, NODE_SECRET: secret, BROKER_ADDRESS: `mqtt://127.0.0.1:${mqttPort}`, PERSISTENCE_ROOT_PATH: path.join(dir, 'ess'), LISTENING_PORT: String(await freePort()), ADMIN_KEY: 'app', ADMIN_SECRET: 'app-secret' })
      edges.push(e)
      procs.push(e)
    }
    const size = MB * 1024 * 1024
    const meta = await fetch(`${base}/api/v1/objects/bench/firmware/fw`, { method: 'PUT', headers: { authorization: ADMIN, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge' } }) })
    if (meta.status !== 204) throw new Error(`meta put: ${meta.status}`)
    process.stderr.write(`large bench (${storage}): uploading ${MB} MiB...\n`)
    const u0 = Date.now()
    const up = await fetch(`${base}/api/v1/objects/bench/firmware/fw/data`, { method: 'PUT', headers: { authorization: ADMIN, 'content-type': 'application/octet-stream' }, body: Readable.from(data(size)) as unknown as RequestInit['body'], duplex: 'half' } as RequestInit)
    if (up.status !== 204) throw new Error(`data put: ${up.status} ${await up.text()}`)
    const uploadS = (Date.now() - u0) / 1000
    // Which phase sets the CSS's peak: the upload, or serving the edges.
    const uploadPeak = await peakRssMB(css.pid ?? 0)
    const t0 = Date.now()
    const cpu0 = await cpuSeconds(css.pid ?? 0)
    const essCpu0 = await Promise.all(edges.map(async (e) => await cpuSeconds(e.pid ?? 0)))
    let lastReport = 0
    for (;;) {
      const list = await (await fetch(`${base}/api/v1/objects/bench/firmware/fw/destinations`, { headers: { authorization: ADMIN } })).json() as Array<{ status: string, bytesReceived?: number }>
      const done = list.filter((d) => d.status === 'delivered').length
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now()
        const bytes = list.reduce((s, d) => s + (d.status === 'delivered' ? size : d.bytesReceived ?? 0), 0)
        process.stderr.write(`  ${((Date.now() - t0) / 1000).toFixed(0)} s: ${done}/${EDGES} delivered, ${Math.round(bytes / 1048576)} MiB held by edges\n`)
      }
      if (list.length === EDGES && done === EDGES) break
      if (Date.now() - t0 > 3_600_000) throw new Error('not delivered within an hour')
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    const totalS = (Date.now() - t0) / 1000
    const cssCpuS = (await cpuSeconds(css.pid ?? 0)) - cpu0
    const essCpuS = (await Promise.all(edges.map(async (e) => await cpuSeconds(e.pid ?? 0)))).reduce((a, c, i) => a + c - (essCpu0[i] ?? 0), 0)
    const essPeaks = await Promise.all(edges.map(async (e) => await peakRssMB(e.pid ?? 0)))
    return {
      storage,
      MiB: MB,
      edges: EDGES,
      uploadS: Number(uploadS.toFixed(1)),
      deliverS: Number(totalS.toFixed(1)),
      deliveredMBps: Math.round((MB * EDGES) / totalS),
      cssPeakRssMB: await peakRssMB(css.pid ?? 0),
      cssPeakAtUploadMB: uploadPeak,
      cssCpuS: Number(cssCpuS.toFixed(1)),
      essCpuS: Number(essCpuS.toFixed(1)),
      essPeakRssMB: Math.max(...essPeaks)
    }
  } finally {
    for (const p of procs.reverse()) {
      if (p.exitCode !== null) continue
      const gone = new Promise((resolve) => p.once('exit', resolve))
      p.kill('SIGTERM')
      await gone
    }
    await stopDb()
    await rm(dir, { recursive: true, force: true })
  }
}

export async function runLargeBench (storages: Array<'local' | 'mongo'>): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  const limit = await plainHttp()
  rows.push(limit)
  for (const s of storages) {
    try {
      rows.push(await run(s))
    } catch (err) {
      rows.push({ storage: s, error: (err as Error).message })
    }
  }
  for (const r of rows) {
    if (r !== limit && typeof r.deliveredMBps === 'number') r.ofLimitPct = Math.round((100 * r.deliveredMBps) / Number(limit.deliveredMBps))
  }
  printTable(`Large object: ${MB} MiB to ${EDGES} edges (embedded broker)`, rows)
  await writeResult('large', { rows })
}
