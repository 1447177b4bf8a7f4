/**
 * Prometheus metrics: the only `prom-client` import. Each service has its own registry (several
 * run in one test process), and every name follows Prometheus's conventions: `edgesync_` prefix,
 * base units (`_seconds`, `_bytes`), `_total` for counters. No label grows with the fleet.
 */
import { createRequire } from 'node:module'
import type * as Prom from 'prom-client'
import { SyncError } from './errors.js'

export type Counter = Prom.Counter
export type Gauge = Prom.Gauge
export type Histogram = Prom.Histogram
export type Registry = Prom.Registry

/**
 * prom-client and what it loads (about 80 modules, 13 MB of RSS, tens of ms at start) are loaded
 * only by a service with metrics on (issue #22: an edge loads what it uses).
 */
let prom: typeof Prom | undefined

function promClient (): typeof Prom {
  if (prom === undefined) throw new SyncError('SYNC_ERR_INTERNAL', 'prom-client used before serviceMetrics loaded it')
  return prom
}

/**
 * With metrics off, every series is this: it takes any update and keeps nothing, so the code that
 * records needs no test of its own for "metrics on".
 */
const nullSeries = {
  inc () {},
  dec () {},
  set () {},
  observe () {},
  reset () {},
  labels () {
    return nullSeries
  }
}
const offRegistry = Object.freeze({ off: true }) as unknown as Registry
const off = (r: Registry): boolean => r === offRegistry

/** Latency buckets from 1 ms to 5 min: a REST call, an MQTT round trip, a fleet's catch-up. */
export const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/**
 * Process figures, read only when scraped. Not prom-client's default collectors: with them a
 * metadata GET cost 6-15% more CPU (`npm run bench -- rest-metrics`, medians of A/B rounds against
 * an A/A control of 0-2%), most of it their per-GC observer; event-loop lag stays (prom-client's
 * sampler), the rest is these few gauges.
 */
function processFigures (registry: Registry): void {
  const g = (name: string, help: string, read: () => number): void => {
    gauge(registry, name, help, [], (x) => {
      x.set(read())
    })
  }
  const started = Date.now() / 1000 - process.uptime()
  g('edgesync_process_start_time_seconds', 'Start time of the process since the Unix epoch', () => started)
  g('edgesync_process_resident_memory_bytes', 'Resident memory size', () => process.memoryUsage.rss())
  g('edgesync_nodejs_heap_size_used_bytes', 'V8 heap in use', () => process.memoryUsage().heapUsed)
  g('edgesync_nodejs_heap_size_total_bytes', 'V8 heap size', () => process.memoryUsage().heapTotal)
  g('edgesync_nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (buffers)', () => process.memoryUsage().external)
  mirroredCounter(registry, 'edgesync_process_cpu_seconds_total', 'CPU time, user and system', () => {
    const u = process.cpuUsage()
    return (u.user + u.system) / 1e6
  })
  const lag = createRequire(import.meta.url)('prom-client/lib/metrics/eventLoopLag') as (
    r: Registry,
    cfg: { prefix: string; eventLoopMonitoringPrecision: number }
  ) => void
  lag(registry, { prefix: 'edgesync_', eventLoopMonitoringPrecision: 10 })
}

export function createRegistry (service: 'css' | 'ess'): Registry {
  const registry = new (promClient().Registry)()
  registry.setDefaultLabels({ service })
  processFigures(registry)
  return registry
}

export function counter (registry: Registry, name: string, help: string, labelNames: string[] = []): Counter {
  if (off(registry)) return nullSeries as unknown as Counter
  return new (promClient().Counter)({ name, help, labelNames, registers: [registry] })
}

/**
 * A counter mirroring counts kept elsewhere, read at scrape time: a single total, or (with `label`)
 * the totals per value of that label.
 */
export function mirroredCounter (
  registry: Registry,
  name: string,
  help: string,
  read: () => number | Record<string, number>,
  label?: string
): Counter {
  return mirroredSeries(registry, name, help, label === undefined ? [] : [label], () => {
    const v = read()
    if (typeof v === 'number') return [[{}, v]]
    return Object.entries(v).map(([k, n]): [Record<string, string>, number] => [{ [label ?? '']: k }, n])
  })
}

/** A counter mirroring totals kept elsewhere, per label set, read at scrape time. */
export function mirroredSeries (
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  read: () => Iterable<[Record<string, string>, number]>
): Counter {
  if (off(registry)) return nullSeries as unknown as Counter
  return new (promClient().Counter)({
    name,
    help,
    labelNames,
    registers: [registry],
    collect (this: Counter) {
      this.reset()
      for (const [labels, n] of read()) this.inc(labels, n)
    }
  })
}

export function gauge (
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[] = [],
  collect?: (g: Gauge) => void | Promise<void>
): Gauge {
  if (off(registry)) return nullSeries as unknown as Gauge
  return new (promClient().Gauge)({
    name,
    help,
    labelNames,
    registers: [registry],
    ...(collect === undefined
      ? {}
      : {
          async collect (this: Gauge) {
            await collect(this)
          }
        })
  })
}

export function histogram (
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[] = [],
  buckets = LATENCY_BUCKETS
): Histogram {
  if (off(registry)) return nullSeries as unknown as Histogram
  return new (promClient().Histogram)({ name, help, labelNames, buckets, registers: [registry] })
}

/** Store operations by backend and `part.method`, one call in 8 (see storage/timed.ts). */
export function storeHistogram (r: Registry): Histogram {
  return histogram(r, 'edgesync_store_operation_seconds', 'Store operations by backend and operation (1 in 8 sampled)', [
    'backend',
    'operation'
  ])
}

/**
 * What a service records into: its registry when metrics are on; when off, a registry whose series
 * keep nothing, no timing of store calls, and prom-client never loaded.
 */
export async function serviceMetrics (service: 'css' | 'ess', on: boolean): Promise<{ registry: Registry; store?: Histogram }> {
  if (!on) return { registry: offRegistry }
  prom ??= await import('prom-client')
  const registry = createRegistry(service)
  return { registry, store: storeHistogram(registry) }
}

/** What the API server needs to serve /metrics (see api/metrics-route.ts). */
export function metricsRoute (registry: Registry, key: string | undefined): { registry: Registry; key?: string } {
  return key === undefined ? { registry } : { registry, key }
}
