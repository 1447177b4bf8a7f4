/**
 * CSS REST throughput and latency under a closed-loop load (`REST_CONCURRENCY` connections, each
 * sending its next request when the previous answer arrived, `REST_SECONDS` per scenario): object
 * puts (1,000 ids, each put a new version), metadata gets, data gets and status queries.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ADMIN_AUTH, cpuSeconds, rssMB, startBenchCss, type Variant } from './lib/css.js'
import { runLoad } from './lib/load.js'
import { printTable, writeResult } from './lib/report.js'

const IDS = 1000
/** One object's metadata as the CSS answers it: the bare route's body (same bytes on the wire). */
let lastMetadataBody = '{}'

type Row = Record<string, string | number>

/** One CSS (`env` added to its environment), every scenario in turn. */
async function measure (variant: Variant, env: Record<string, string>, concurrency: number, seconds: number): Promise<Row[]> {
  const rows: Row[] = []
  const css = await startBenchCss(variant, env)
  try {
    const url = new URL(css.base)
    const base = `http://${url.host}`
    const json = { authorization: ADMIN_AUTH, 'content-type': 'application/json' }
    const obj = (i: number): string => `/api/v1/objects/bench/conf/o${i % IDS}`
    const scenarios: Array<{ name: string, method: string, path: (i: number) => string, body?: (i: number) => Buffer, ok: number[] }> = [
      { name: 'PUT object (new version, 64 B data)', method: 'PUT', path: obj, body: (i) => Buffer.from(JSON.stringify({ meta: { destinationType: 'edge', description: `v${i}` }, data: Buffer.from(`{"threshold":${i},"pad":"0123456789abcdef"}`).toString('base64') })), ok: [204] },
      { name: 'GET object metadata', method: 'GET', path: obj, ok: [200] },
      { name: 'GET object data', method: 'GET', path: (i) => `${obj(i)}/data`, ok: [200] },
      { name: 'GET object status', method: 'GET', path: (i) => `${obj(i)}/status`, ok: [200] },
      { name: 'GET object destinations', method: 'GET', path: (i) => `${obj(i)}/destinations`, ok: [200] }
    ]
    // Every id exists before the reads, whatever rate the puts reached.
    const put = scenarios[0]
    if (put?.body !== undefined) {
      const setup = await runLoad({ base, method: 'PUT', path: (i) => obj(i), headers: json, body: put.body, concurrency, seconds: 3600, ok: [204], count: IDS })
      if (setup.errors > 0) throw new Error(`${setup.errors} of ${IDS} setup puts failed`)
    }
    lastMetadataBody = await (await fetch(`${base}${obj(0)}`, { headers: { authorization: ADMIN_AUTH } })).text()
    // REST_ONLY: scenarios whose name contains it (e.g. "status"), for a quicker look at one path.
    const only = process.env.REST_ONLY
    for (const s of scenarios.filter((x) => only === undefined || x.name.includes(only))) {
      process.stderr.write(`rest: ${variant} ${JSON.stringify(env)}: ${s.name}...\n`)
      const cpu0 = await cpuSeconds(css.pid)
      const r = await runLoad({ base, method: s.method, path: s.path, headers: s.body === undefined ? { authorization: ADMIN_AUTH } : json, ...(s.body === undefined ? {} : { body: s.body }), concurrency, seconds, ok: s.ok })
      const cpu = (await cpuSeconds(css.pid)) - cpu0
      rows.push({ variant, scenario: s.name, ...r, cssCpuPct: Math.round((100 * cpu) / seconds), cssCpuUsPerReq: Math.round((1e6 * cpu) / Math.max(1, r.requests)), cssRssMB: await rssMB(css.pid) })
    }
  } finally {
    await css.stop()
  }
  return rows
}

const BARE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'lib', 'bare-rest.js')

/**
 * The same metadata GET against a bare Fastify route with the same Basic-auth check (bench/lib/
 * bare-rest.ts), answering the CSS's own body: the limit our GET is measured against (#22).
 */
async function measureBare (body: string, concurrency: number, seconds: number): Promise<Row> {
  const child = spawn(process.execPath, [BARE], { env: { ...process.env, BARE_BODY: body }, stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        const m = /ready (\d+)/.exec(d.toString())
        if (m !== null) resolve(Number(m[1]))
      })
      child.once('exit', (code) => { reject(new Error(`bare-rest exited with ${String(code)}`)) })
    })
    const pid = child.pid ?? 0
    const cpu0 = await cpuSeconds(pid)
    const r = await runLoad({ base: `http://127.0.0.1:${port}`, method: 'GET', path: (i) => `/api/v1/objects/bench/conf/o${i % IDS}`, headers: { authorization: ADMIN_AUTH }, concurrency, seconds, ok: [200] })
    const cpu = (await cpuSeconds(pid)) - cpu0
    return { variant: 'bare Fastify', scenario: 'GET, same Basic auth, fixed body', ...r, cssCpuPct: Math.round((100 * cpu) / seconds), cssCpuUsPerReq: Math.round((1e6 * cpu) / Math.max(1, r.requests)), cssRssMB: await rssMB(pid) }
  } finally {
    child.kill('SIGTERM')
  }
}

export async function runRestBench (variants: Variant[], concurrency: number, seconds: number): Promise<void> {
  const rows: Row[] = []
  for (const variant of variants) rows.push(...await measure(variant, {}, concurrency, seconds))
  if (process.env.REST_BARE !== '0') {
    process.stderr.write('rest: bare Fastify route with the same Basic auth...\n')
    const bare = await measureBare(lastMetadataBody, concurrency, seconds)
    rows.push(bare)
    // Our metadata GET as a share of the bare route's requests/s (goal: >= 50%).
    for (const r of rows) {
      if (r.scenario === 'GET object metadata') r.ofBarePct = Math.round((100 * Number(r.perS)) / Math.max(1, Number(bare.perS)))
    }
  }
  printTable(`rest: CSS REST API, ${concurrency} keep-alive connections, ${seconds} s per scenario (Basic auth on every request)`, rows)
  await writeResult('rest', { concurrency, seconds, rows })
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

/**
 * The cost of metrics: `rounds` rounds, each a CSS with `Metrics: false` and one with `true` (the
 * order alternates, so drift in the machine falls on both), medians of requests/s and of the CSS's
 * CPU microseconds per request. The CSS is the bottleneck here (one core at 100%), so CPU per
 * request is the steadier figure.
 */
export async function runRestMetricsBench (variant: Variant, rounds: number, concurrency: number, seconds: number): Promise<void> {
  const runs: Record<'off' | 'on', Row[][]> = { off: [], on: [] }
  for (let i = 0; i < rounds; i++) {
    for (const m of i % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      // REST_AB_CONTROL=1: both sides without metrics (an A/A run), to see the bench's own bias and noise.
      const on = m === 'on' && process.env.REST_AB_CONTROL !== '1'
      runs[m].push(await measure(variant, { METRICS: String(on) }, concurrency, seconds))
    }
  }
  const scenarios = (runs.off[0] ?? []).map((r) => String(r.scenario))
  const rows: Row[] = scenarios.map((scenario) => {
    const pick = (m: 'off' | 'on', k: string): number => median(runs[m].map((rs) => Number(rs.find((r) => r.scenario === scenario)?.[k] ?? 0)))
    const off = pick('off', 'perS')
    const on = pick('on', 'perS')
    const cpuOff = pick('off', 'cssCpuUsPerReq')
    const cpuOn = pick('on', 'cssCpuUsPerReq')
    return {
      scenario,
      perSOff: Math.round(off),
      perSOn: Math.round(on),
      throughputCostPct: Math.round((1000 * (off - on)) / off) / 10,
      cpuUsOff: cpuOff,
      cpuUsOn: cpuOn,
      cpuCostPct: Math.round((1000 * (cpuOn - cpuOff)) / cpuOff) / 10,
      spreadOffPct: Math.round((1000 * (Math.max(...runs.off.map((rs) => Number(rs.find((r) => r.scenario === scenario)?.perS ?? 0))) - Math.min(...runs.off.map((rs) => Number(rs.find((r) => r.scenario === scenario)?.perS ?? 0))))) / off) / 10
    }
  })
  const control = process.env.REST_AB_CONTROL === '1' ? ' (A/A control: metrics off on both sides)' : ''
  printTable(`rest-metrics${control}: ${variant}, ${rounds} rounds of metrics off/on, ${concurrency} connections, ${seconds} s per scenario (medians)`, rows)
  await writeResult('rest-metrics', { variant, rounds, control: control !== '', concurrency, seconds, rows, runs })
}
