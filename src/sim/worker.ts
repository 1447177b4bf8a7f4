/**
 * A simulator worker process: runs a slice of the fleet's edges (devices + ESS each) and ticks
 * their site models once a second. Driven by its parent over IPC; stops cleanly on `stop` and on
 * its own if the parent goes away (so a killed simulator leaves no orphans behind).
 */
import { forEachLimit } from '../common/concurrency.js'
import { createLogger, type LogLevel } from '../common/log.js'
import { loadProfiles } from '../ems/common/profiles.js'
import { SimEdge, type DeviceId, type SimEdgeSpec } from './edge.js'

export interface WorkerStart {
  cmd: 'start'
  org: string
  destinationType: string
  broker: string
  dir: string
  edges: SimEdgeSpec[]
  /** Simulated ms since the epoch at `realStart`, and how many simulated seconds pass per real second. */
  simStart: number
  realStart: number
  timeScale: number
  logLevel: LogLevel
  signingKey?: string
}
export type WorkerReply =
  | { cmd: 'edge'; id: string; ports: Record<DeviceId, number> }
  | { cmd: 'started'; count: number }
  | { cmd: 'error'; message: string }
  | { cmd: 'stopped' }

const STARTS_IN_FLIGHT = 8
const edges: SimEdge[] = []
let ticker: NodeJS.Timeout | undefined
let stopping: Promise<void> | undefined

const send = (m: WorkerReply): void => {
  if (process.connected) process.send?.(m)
}

async function start (m: WorkerStart): Promise<void> {
  const log = createLogger({ level: m.logLevel })
  const profiles = loadProfiles()
  const clock = (): number => m.simStart + (Date.now() - m.realStart) * m.timeScale
  ticker = setInterval(() => {
    const now = clock()
    for (const e of edges) e.tick(now)
  }, 1000)
  // A few edges start at once: each start mostly waits on fsyncs and the broker's CONNACK.
  await forEachLimit(m.edges, STARTS_IN_FLIGHT, async (spec) => {
    if (stopping !== undefined) return
    const e = new SimEdge(spec, profiles)
    edges.push(e)
    await e.start({
      org: m.org,
      destinationType: m.destinationType,
      broker: m.broker,
      dir: m.dir,
      clock,
      log,
      signingKey: m.signingKey
    })
    send({ cmd: 'edge', id: spec.id, ports: e.ports })
  })
  send({ cmd: 'started', count: edges.length })
}

async function stop (): Promise<void> {
  stopping ??= (async () => {
    clearInterval(ticker)
    await Promise.all(
      edges.map(async (e) => {
        await e.close().catch(() => {})
      })
    )
  })()
  await stopping
}

process.on('message', (raw: unknown) => {
  const m = raw as WorkerStart | { cmd: 'stop' }
  if (m.cmd === 'start') {
    start(m).catch((err: unknown) => {
      send({ cmd: 'error', message: (err as Error).message })
    })
    return
  }
  void stop().then(() => {
    send({ cmd: 'stopped' })
    process.exit(0)
  })
})
// The parent died or closed the channel: nobody will say stop.
process.on('disconnect', () => {
  void stop().then(() => process.exit(0))
})
// Ctrl-C in a terminal reaches the whole process group; the parent coordinates the shutdown.
process.on('SIGINT', () => {})
