/**
 * Clustering: the same fan-out on one CSS and on two clustered CSS in the same run, both on the
 * mongo store (FerretDB on PostgreSQL): the one with its embedded broker alone, the two with their
 * brokers joined through Redis behind HAProxy (the documented embedded-cluster shape). Reports
 * p99 and deliveries/s of each and the cluster's overhead, then the failover under load: the lease
 * holder is SIGKILLed, a new object is published through the survivor at once, and the bench times
 * the lease takeover and the moment every edge (half of them reconnecting through HAProxy) has
 * consumed it.
 */
import { ferretBackend, startFerretDb, type FerretDb } from '../harness/ferretdb.js'
import { findBinary } from '../harness/find-binary.js'
import { startHaproxy } from '../harness/haproxy.js'
import { startRedis } from '../harness/redis.js'
import { pct } from './lib/load.js'
import { ADMIN_JSON, cpuSeconds, startBenchCss, type BenchCss } from './lib/css.js'
import { printTable, writeResult } from './lib/report.js'
import { publish, sleep, startEdgeWorkers, stopEdgeWorkers, waitConsumed, waitOnline } from './fanout.js'

const LEASE_SECONDS = 5

function need (name: string): string {
  const bin = findBinary(name)
  if (bin === undefined) throw new Error(`${name} not found: the cluster bench needs it`)
  return bin
}

function say (what: string): void {
  process.stderr.write(`cluster: ${what}\n`)
}

function mongoEnv (db: FerretDb, name: string): Record<string, string> {
  return { STORAGE_PROVIDER: 'mongo', MONGO_URI: db.uri, MONGO_DB_NAME: name }
}

async function fanout (css: BenchCss, pids: number[], n: number): Promise<Record<string, number>> {
  const cpu0 = await Promise.all(pids.map(cpuSeconds))
  const t0 = Date.now()
  await publish(css.base, 'c1')
  const lat = (await waitConsumed(css.base, 'c1', n, 1_800_000)).map((t) => t - t0).sort((a, b) => a - b)
  const cpu1 = await Promise.all(pids.map(cpuSeconds))
  return {
    p50Ms: pct(lat, 0.5),
    p99Ms: pct(lat, 0.99),
    deliveriesPerS: Math.round(n / ((lat.at(-1) ?? 1) / 1000)),
    cssCpuS: Number(cpu1.reduce((s, c, i) => s + c - (cpu0[i] ?? 0), 0).toFixed(2))
  }
}

async function single (db: FerretDb, n: number): Promise<Record<string, number>> {
  const css = await startBenchCss('aedes+local', mongoEnv(db, `single${n}`))
  say('CSS up')
  try {
    const nodes = await css.enroll(n)
    say(`${n} enrolled; connecting`)
    const workers = await startEdgeWorkers('sync', css.mqttUrl, nodes)
    await waitOnline(css.base, n)
    say('all online; publishing')
    await sleep(1000)
    const r = await fanout(css, [css.pid], n)
    await stopEdgeWorkers(workers)
    return r
  } finally {
    await css.stop()
  }
}

async function lease (base: string): Promise<{ leader: boolean } | undefined> {
  try {
    return ((await (await fetch(`${base}/readyz`)).json()) as { lease: { leader: boolean } }).lease
  } catch {
    return undefined
  }
}

async function clustered (db: FerretDb, n: number): Promise<Record<string, number>> {
  const redis = await startRedis(need('redis-server'))
  const started: BenchCss[] = []
  try {
    for (const id of ['a', 'b']) {
      started.push(await startBenchCss('aedes+local', {
        ...mongoEnv(db, `cluster${n}`),
        CLUSTER_REDIS_ADDRESS: redis.url,
        CSS_INSTANCE_ID: id,
        LEASE_SECONDS: String(LEASE_SECONDS)
      }))
    }
    const [a, b] = started as [BenchCss, BenchCss]
    const lb = await startHaproxy(need('haproxy'), [{ name: 'mqtt', mode: 'tcp', servers: started.map((c) => c.mqttUrl.replace('mqtt://', '')) }], n + 1000)
    try {
      const nodes = await a.enroll(n)
      say(`${n} enrolled; connecting through HAProxy`)
      const workers = await startEdgeWorkers('sync', `mqtt://127.0.0.1:${lb.ports.get('mqtt') ?? 0}`, nodes)
      await waitOnline(a.base, n)
      say('all online; publishing')
      await sleep(1000)
      const r = await fanout(a, [a.pid, b.pid], n)
      // Failover under load: the lease holder dies; an object is published through the survivor.
      const victim = (await lease(a.base))?.leader === true ? a : b
      const survivor = victim === a ? b : a
      say(`fan-out done; SIGKILL to the lease holder (pid ${victim.pid})`)
      process.kill(victim.pid, 'SIGKILL')
      const t0 = Date.now()
      for (;;) {
        const put = await fetch(`${survivor.base}/api/v1/objects/bench/conf/c2`, { method: 'PUT', headers: ADMIN_JSON, body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from('{"after":"failover"}').toString('base64') }) }).catch(() => undefined)
        if (put?.status === 204) break
        if (Date.now() - t0 > 60_000) throw new Error(`publish after failover: ${String(put?.status)}`)
        await sleep(100)
      }
      let leaseMs = 0
      const watchLease = (async () => {
        while ((await lease(survivor.base))?.leader !== true) await sleep(100)
        leaseMs = Date.now() - t0
      })()
      const done = await waitConsumed(survivor.base, 'c2', n, 1_800_000)
      await watchLease
      await stopEdgeWorkers(workers)
      return { ...r, failoverLeaseMs: leaseMs, failoverAllConsumedMs: Math.max(...done) - t0 }
    } finally {
      await lb.stop()
    }
  } finally {
    for (const c of started) await c.stop()
    await redis.stop()
  }
}

export async function runClusterBench (sizes: number[]): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  const db = await startFerretDb(need('ferretdb'), { backend: ferretBackend() })
  say(`FerretDB on ${ferretBackend()} up`)
  try {
    for (const n of sizes) {
      process.stderr.write(`cluster: 1 CSS, N=${n}...\n`)
      const one = await single(db, n)
      process.stderr.write(`cluster: 2 CSS, N=${n}...\n`)
      const two = await clustered(db, n)
      rows.push({ shape: '1 CSS (aedes, mongo)', edges: n, ...one })
      rows.push({
        shape: '2 CSS (aedes+Redis, mongo, HAProxy)',
        edges: n,
        ...two,
        overheadPct: Math.round(100 * ((one.deliveriesPerS ?? 0) / (two.deliveriesPerS ?? 1) - 1))
      })
    }
  } finally {
    await db.stop()
  }
  printTable(`cluster: one small object to N edges, 1 CSS vs 2 clustered CSS (FerretDB on ${ferretBackend()}); failover: lease holder SIGKILLed (LeaseSeconds ${LEASE_SECONDS})`, rows)
  await writeResult('cluster', { leaseSeconds: LEASE_SECONDS, rows })
}
