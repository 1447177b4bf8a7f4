/**
 * CSS REST throughput and latency under a closed-loop load (`REST_CONCURRENCY` connections, each
 * sending its next request when the previous answer arrived, `REST_SECONDS` per scenario): object
 * puts (1,000 ids, each put a new version), metadata gets, data gets and status queries.
 */
import { ADMIN_AUTH, cpuSeconds, rssMB, startBenchCss, type Variant } from './lib/css.js'
import { runLoad } from './lib/load.js'
import { printTable, writeResult } from './lib/report.js'

const IDS = 1000

export async function runRestBench (variants: Variant[], concurrency: number, seconds: number): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  for (const variant of variants) {
    const css = await startBenchCss(variant)
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
      for (const s of scenarios) {
        process.stderr.write(`rest: ${variant}: ${s.name}...\n`)
        const cpu0 = await cpuSeconds(css.pid)
        const r = await runLoad({ base, method: s.method, path: s.path, headers: s.body === undefined ? { authorization: ADMIN_AUTH } : json, ...(s.body === undefined ? {} : { body: s.body }), concurrency, seconds, ok: s.ok })
        rows.push({ variant, scenario: s.name, ...r, cssCpuPct: Math.round((100 * ((await cpuSeconds(css.pid)) - cpu0)) / seconds), cssRssMB: await rssMB(css.pid) })
      }
    } finally {
      await css.stop()
    }
  }
  printTable(`rest: CSS REST API, ${concurrency} keep-alive connections, ${seconds} s per scenario (Basic auth on every request)`, rows)
  await writeResult('rest', { concurrency, seconds, rows })
}
