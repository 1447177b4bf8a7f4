/**
 * A simulated fleet against a CSS: enrolls edge0..edge{N-1} (each its own generated secret),
 * places them in sites round robin, runs them in worker processes, points each edge's EMS layer
 * at its devices' ports, installs the simulator's org layer if the org has none, and waits until
 * every edge is online and runs its configuration.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { forEachLimit } from '../common/concurrency.js'
import type { LogLevel } from '../common/log.js'
import { cpuSeconds, rssMB } from '../common/proc-stats.js'
import type { DeviceId, SimEdgeSpec } from './edge.js'
import { simEdgeLayer, simOrgLayer } from './layers.js'
import type { WorkerReply, WorkerStart } from './worker.js'
import { SyncError, SyncErrorCode } from '../common/errors.js'

/** A REST call on the CSS (JSON in and out); throws on an HTTP error, with `status` when there is one. */
export type Rest = (method: string, urlPath: string, body?: unknown) => Promise<unknown>

export interface FleetOptions {
  edges: number
  sites: number
  org: string
  destinationType: string
  prefix: string
  broker: string
  rest: Rest
  /** Where the edges keep their stores; a temporary folder (removed at stop) when not given. */
  dir?: string | undefined
  edgesPerWorker: number
  timeScale: number
  /** Simulated clock at start (ms since the epoch); now when not given. */
  simStart?: number | undefined
  cyclePeriodMs: number
  logLevel: LogLevel
  progress: (line: string) => void
}

export interface EdgeState {
  edge: string
  online: boolean
  site: string
  version?: number
  status?: string
}

const HERE = path.dirname(fileURLToPath(import.meta.url))
// Under tap's TypeScript loader this file is fleet.ts and the worker worker.ts; built, both are .js.
const WORKER = path.join(HERE, `worker${path.extname(fileURLToPath(import.meta.url))}`)
const IN_FLIGHT = 16

export class Fleet {
  readonly options: FleetOptions
  readonly specs: SimEdgeSpec[] = []
  readonly workers: ChildProcess[] = []
  readonly ports = new Map<string, Record<DeviceId, number>>()
  readonly startedAt = Date.now()
  orgLayerInstalled = false
  #dir = ''
  #ownDir = false
  #stopping: Promise<void> | undefined

  constructor (o: FleetOptions) {
    this.options = o
  }

  /** Everything up to "all edges running": enroll, start, configure. Stops what it started on failure. */
  async start (): Promise<void> {
    const o = this.options
    try {
      this.#ownDir = o.dir === undefined
      this.#dir = o.dir ?? (await mkdtemp(path.join(tmpdir(), 'edgesync-sim-')))
      o.progress(`Enrolling ${o.edges} edge(s) in org ${o.org} (${o.sites} site(s))`)
      let signingKey: string | undefined
      const ids = Array.from({ length: o.edges }, (_, i) => i)
      await forEachLimit(ids, IN_FLIGHT, async (i) => {
        const id = `${o.prefix}${i}`
        const r = (await o.rest('POST', `/api/v1/nodes/${o.org}/${o.destinationType}/${id}/enroll`)) as {
          secret: string
          signingKey?: string
        }
        signingKey ??= r.signingKey
        this.specs[i] = { id, secret: r.secret, site: `site${i % o.sites}`, seed: i + 1 }
      })
      await this.#startWorkers(signingKey)
      o.progress(`Pointing each edge's EMS layer at its devices (${this.ports.size} edges)`)
      await forEachLimit(this.specs, IN_FLIGHT, async (s) => {
        await o.rest(
          'PUT',
          `/api/v1/ems/${o.org}/layers/edge:${s.id}`,
          simEdgeLayer(this.ports.get(s.id) as Record<DeviceId, number>)
        )
      })
      const hasOrgLayer = await o.rest('GET', `/api/v1/ems/${o.org}/layers/org`).then(
        () => true,
        (err: { status?: number }) => {
          if (err.status === 404) return false
          throw err
        }
      )
      if (!hasOrgLayer) {
        o.progress(
          "The org has no EMS org layer: installing the simulator's (balancing + peak shaving over the five devices)"
        )
        await o.rest('PUT', `/api/v1/ems/${o.org}/layers/org`, simOrgLayer(o.cyclePeriodMs))
        this.orgLayerInstalled = true
      }
      await this.waitUntil(
        'every edge online and running its config',
        (s) => s.every((e) => e.online && e.status === 'consumed'),
        60_000 + o.edges * 100
      )
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async #startWorkers (signingKey: string | undefined): Promise<void> {
    const o = this.options
    const count = Math.max(1, Math.ceil(o.edges / o.edgesPerWorker))
    o.progress(
      `Starting ${o.edges} edge(s) (ESS + EMS plugin + 5 simulated Modbus devices each) in ${count} worker process(es)`
    )
    const base = {
      cmd: 'start' as const,
      org: o.org,
      destinationType: o.destinationType,
      broker: o.broker,
      dir: this.#dir,
      simStart: o.simStart ?? Date.now(),
      realStart: Date.now(),
      timeScale: o.timeScale,
      logLevel: o.logLevel,
      signingKey
    }
    let last = Date.now()
    await Promise.all(
      Array.from({ length: count }, async (_, w) => {
        const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
        this.workers.push(child)
        await new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => {
            reject(
              new SyncError(
                SyncErrorCode.UNAVAILABLE,
                `Simulator worker ${w} exited (code ${String(code)}) while starting`
              )
            )
          })
          child.on('message', (m: WorkerReply) => {
            if (m.cmd === 'edge') {
              this.ports.set(m.id, m.ports)
              if (Date.now() - last > 2000) {
                last = Date.now()
                o.progress(`  ${this.ports.size}/${o.edges} edges started`)
              }
            } else if (m.cmd === 'started') resolve()
            else if (m.cmd === 'error') {
              reject(new SyncError(SyncErrorCode.UNAVAILABLE, `Simulator worker ${w}: ${m.message}`))
            }
          })
          child.send({ ...base, edges: this.specs.filter((_, i) => i % count === w) } satisfies WorkerStart)
        })
      })
    )
  }

  /** Each simulated edge as the CSS sees it: online, and the state of its EMS config. */
  async states (): Promise<EdgeState[]> {
    const o = this.options
    const nodes = (await o.rest('GET', `/api/v1/destinations/${o.org}`)) as Array<{
      destinationType: string
      destinationID: string
      online: boolean
    }>
    const online = new Set(
      nodes.filter((n) => n.destinationType === o.destinationType && n.online).map((n) => n.destinationID)
    )
    const ems = new Map(
      (
        (await o.rest('GET', `/api/v1/ems/${o.org}/status`)) as Array<{
          edge: string
          latest?: number
          status?: string
        }>
      ).map((e) => [e.edge, e])
    )
    return this.specs.map((s) => {
      const e = ems.get(s.id)
      return {
        edge: s.id,
        site: s.site,
        online: online.has(s.id),
        ...(e?.latest === undefined ? {} : { version: e.latest }),
        ...(e?.status === undefined ? {} : { status: e.status })
      }
    })
  }

  /** Polls `states` until `ok`, printing progress every few seconds; throws after `timeoutMs`. */
  async waitUntil (what: string, ok: (s: EdgeState[]) => boolean, timeoutMs: number): Promise<EdgeState[]> {
    const deadline = Date.now() + timeoutMs
    let last = 0
    for (;;) {
      const s = await this.states()
      if (ok(s)) return s
      if (Date.now() > deadline) {
        throw new SyncError(SyncErrorCode.UNAVAILABLE, `Timed out waiting for ${what}: ${summary(s)}`)
      }
      if (Date.now() - last > 3000) {
        last = Date.now()
        this.options.progress(`  waiting for ${what}: ${summary(s)}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  }

  /** Resident memory of the worker processes (MB), and per edge (kB). */
  async memory (): Promise<{ workersMB: number; perEdgeKB: number }> {
    const mb = (await Promise.all(this.workers.map(async (w) => await rssMB(w.pid ?? 0)))).reduce(
      (a, b) => a + b,
      0
    )
    return { workersMB: mb, perEdgeKB: Math.round((mb * 1024) / Math.max(1, this.specs.length)) }
  }

  /** CPU seconds the worker processes used so far (user + system). */
  async cpuSeconds (): Promise<number> {
    return (await Promise.all(this.workers.map(async (w) => await cpuSeconds(w.pid ?? 0)))).reduce(
      (a, b) => a + b,
      0
    )
  }

  /** Stops every worker (each closes its ESS instances and devices), then removes a temporary folder. */
  async stop (): Promise<void> {
    this.#stopping ??= (async () => {
      await Promise.all(
        this.workers.map(async (w) => {
          if (w.exitCode !== null || w.signalCode !== null) return
          const gone = new Promise((resolve) => w.once('exit', resolve))
          const force = setTimeout(() => {
            w.kill('SIGKILL')
          }, 30_000)
          if (w.connected) w.send({ cmd: 'stop' })
          else w.kill('SIGTERM')
          await gone
          clearTimeout(force)
        })
      )
      if (this.#ownDir && this.#dir !== '') await rm(this.#dir, { recursive: true, force: true })
    })()
    await this.#stopping
  }
}

export function summary (s: EdgeState[]): string {
  const online = s.filter((e) => e.online).length
  const running = s.filter((e) => e.status === 'consumed').length
  const failed = s.filter((e) => e.status === 'error').length
  return `${online}/${s.length} online, ${running}/${s.length} running their config${failed > 0 ? `, ${failed} refused or rolled back` : ''}`
}
