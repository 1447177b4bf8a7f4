/**
 * A closed-loop HTTP load generator (autocannon's model): `concurrency` keep-alive connections,
 * each sending its next request as soon as the previous answer arrived, for `seconds`.
 */
import http from 'node:http'

export interface LoadSpec {
  base: string
  method: string
  path: (i: number) => string
  headers: Record<string, string>
  body?: (i: number) => Buffer
  concurrency: number
  seconds: number
  /** Status codes that count as success. */
  ok: number[]
  /** Stop after this many requests (default: only the time limit). */
  count?: number
}

export interface LoadResult { requests: number, errors: number, perS: number, p50Ms: number, p99Ms: number, maxMs: number }

export function pct (sorted: number[], p: number): number { return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0 }

export async function runLoad (s: LoadSpec): Promise<LoadResult> {
  const url = new URL(s.base)
  const agent = new http.Agent({ keepAlive: true, maxSockets: s.concurrency })
  const lat: number[] = []
  let errors = 0
  let n = 0
  const end = performance.now() + s.seconds * 1000
  const one = async (i: number): Promise<void> => {
    const body = s.body?.(i)
    const t0 = performance.now()
    const status = await new Promise<number>((resolve) => {
      const req = http.request({ agent, host: url.hostname, port: url.port, method: s.method, path: s.path(i), headers: { ...s.headers, ...(body === undefined ? {} : { 'content-length': body.length }) } }, (res) => {
        res.resume()
        res.on('end', () => { resolve(res.statusCode ?? 0) })
      })
      req.on('error', () => { resolve(0) })
      req.end(body)
    })
    lat.push(performance.now() - t0)
    if (!s.ok.includes(status)) errors++
  }
  const t0 = performance.now()
  const limit = s.count ?? Infinity
  await Promise.all(Array.from({ length: s.concurrency }, async () => { while (performance.now() < end && n < limit) await one(n++) }))
  const took = (performance.now() - t0) / 1000
  agent.destroy()
  lat.sort((a, b) => a - b)
  const r = (v: number): number => Number(v.toFixed(1))
  return { requests: lat.length, errors, perS: Math.round(lat.length / took), p50Ms: r(pct(lat, 0.5)), p99Ms: r(pct(lat, 0.99)), maxMs: r(lat.at(-1) ?? 0) }
}
