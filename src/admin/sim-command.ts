/**
 * `syncctl sim`: a fleet of simulated edges (real ESS + EMS plugin + simulated Modbus devices)
 * against a running CSS, or against one it starts itself on embedded defaults (`--with-css`).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Option, type Command } from 'commander'
import { buildConfig } from '../common/config/load.js'
import { createLogger, type LogLevel } from '../common/log.js'
import { startCss as startCloudSyncService, type CssHandle } from '../app/css.js'
import { rssMB } from '../common/proc-stats.js'
import { Fleet, summary } from '../sim/fleet.js'
import { CliError, connection, EXIT, print, request, type Connection, type Io } from './client.js'

interface SimOptions {
  edges: string
  sites: string
  org: string
  destType: string
  prefix: string
  broker?: string
  withCss?: boolean
  cssPort: string
  mqttPort: string
  cssData?: string
  data?: string
  edgesPerWorker: string
  timeScale: string
  startHour?: string
  cycleMs: string
  duration?: string
  reportSeconds: string
  logLevel: LogLevel
  json?: boolean
}

function positive (name: string, v: string, min = 1): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n < min) {
    throw new CliError(`${name} must be a number >= ${min}, not ${v}`, EXIT.USAGE)
  }
  return n
}

async function startCss (
  o: SimOptions,
  io: Io
): Promise<{ css: CssHandle; conn: Connection; credentials: string; dir: string; own: boolean }> {
  const own = o.cssData === undefined
  const dir = o.cssData ?? (await mkdtemp(path.join(tmpdir(), 'edgesync-sim-css-')))
  const css = await startCloudSyncService(
    buildConfig(
      {},
      {},
      {
        NodeType: 'CSS',
        PersistenceRootPath: dir,
        ListeningAddress: '127.0.0.1',
        ListeningPort: positive('--css-port', o.cssPort, 0),
        MqttListeningAddress: '127.0.0.1',
        MqttListeningPort: positive('--mqtt-port', o.mqttPort, 0),
        // One admin enrolls and configures the whole fleet in a burst.
        RateLimitPerSecond: 100_000
      }
    ),
    createLogger({ level: o.logLevel })
  )
  // The CSS wrote its generated admin credentials here (never printed).
  const credentials = path.join(dir, 'css', 'bootstrap-admin.json')
  const saved = JSON.parse(await readFile(credentials, 'utf8')) as { appKey: string; secret: string }
  io.stderr(
    `CSS started: REST ${css.restUrl}, MQTT ${css.mqttUrls.join(', ')}; admin credentials in ${credentials}\n`
  )
  return {
    css,
    conn: {
      url: css.restUrl,
      auth: `Basic ${Buffer.from(`${saved.appKey}:${saved.secret}`).toString('base64')}`
    },
    credentials,
    dir,
    own
  }
}

function defaultBroker (restUrl: string, io: Io): string {
  return io.env.SYNC_BROKER ?? `mqtt://${new URL(restUrl).hostname}:1883`
}

export function addSimCommand (program: Command, io: Io): void {
  program
    .command('sim')
    .description('run N simulated edges (ESS + EMS plugin + simulated meters and battery) until Ctrl-C')
    .option('--edges <n>', 'number of edges, named <prefix>0..<prefix>N-1', '1')
    .option('--sites <k>', 'sites the edges are placed in, round robin (site0..site{K-1})', '1')
    .option('--org <org>', 'organization of the edges', 'sim')
    .option('--dest-type <type>', "destination type of the edges (the CSS's EmsDestinationType)", 'edge')
    .option('--prefix <p>', 'edge id prefix', 'edge')
    .option(
      '--broker <url>',
      'MQTT broker the edges connect to (env SYNC_BROKER; default: the CSS host, port 1883)'
    )
    .option(
      '--with-css',
      'start a CSS in this process (embedded broker, local store) instead of using a running one'
    )
    .option('--css-port <port>', 'REST port of the --with-css CSS (0: any free port)', '8080')
    .option('--mqtt-port <port>', 'MQTT port of the --with-css CSS (0: any free port)', '1883')
    .option(
      '--css-data <dir>',
      'data folder of the --with-css CSS (default: a temporary folder, removed at exit)'
    )
    .option('--data <dir>', "folder for the edges' stores (default: a temporary folder, removed at exit)")
    .option('--edges-per-worker <n>', 'edges per worker process', '250')
    .option('--time-scale <x>', 'simulated seconds per real second (e.g. 1440: a day in a minute)', '1')
    .option('--start-hour <h>', 'simulated local hour at start (default: now)')
    .option('--cycle-ms <ms>', 'EMS core cycle of the org layer the simulator installs', '1000')
    .option('--duration <seconds>', 'stop by itself after this long (default: run until Ctrl-C)')
    .option('--report-seconds <s>', 'print the fleet state this often', '30')
    .addOption(
      new Option('--log-level <level>', 'log level of the edges (and the --with-css CSS), to stderr')
        .choices(['error', 'warn', 'info', 'debug'])
        .default('warn')
    )
    .option('--json', 'print the ready summary as one JSON line')
    .action(async (o: SimOptions, cmd: Command) => {
      const edges = positive('--edges', o.edges)
      const started = Date.now()
      const own = o.withCss === true ? await startCss(o, io) : undefined
      const conn = own?.conn ?? connection(cmd, io)
      const broker = o.broker ?? own?.css.mqttUrls[0] ?? defaultBroker(conn.url, io)
      const simStart =
        o.startHour === undefined
          ? undefined
          : new Date().setHours(0, 0, 0, 0) + positive('--start-hour', o.startHour, 0) * 3_600_000
      const fleet = new Fleet({
        edges,
        sites: positive('--sites', o.sites),
        org: o.org,
        destinationType: o.destType,
        prefix: o.prefix,
        broker,
        rest: async (method, urlPath, body) => await request(io, conn, method, urlPath, body),
        dir: o.data,
        edgesPerWorker: positive('--edges-per-worker', o.edgesPerWorker),
        timeScale: positive('--time-scale', o.timeScale, 0),
        simStart,
        cyclePeriodMs: positive('--cycle-ms', o.cycleMs, 100),
        logLevel: o.logLevel,
        progress: (line) => {
          io.stderr(line + '\n')
        }
      })
      let stopping: Promise<void> | undefined
      const stop = async (): Promise<void> => {
        stopping ??= (async () => {
          io.stderr('Stopping the simulated fleet...\n')
          await fleet.stop()
          await own?.css.close()
          if (own?.own === true) await rm(own.dir, { recursive: true, force: true })
          io.stderr('Stopped.\n')
        })()
        await stopping
      }
      let finish = (): void => {}
      let interrupted = false
      const signalled = new Promise<void>((resolve) => {
        finish = resolve
        const on = (): void => {
          interrupted = true
          resolve()
        }
        process.once('SIGINT', on)
        process.once('SIGTERM', on)
      })
      try {
        // Ctrl-C while the fleet starts stops it there (starting 1,000 edges takes minutes).
        const starting = fleet.start()
        starting.catch(() => {}) // after an interrupt, its failure (workers stopped under it) is expected
        await Promise.race([
          starting,
          signalled.then(async () => {
            throw new CliError('Interrupted while starting', EXIT.OK)
          })
        ])
      } catch (err) {
        await stop()
        if (interrupted) return
        throw err instanceof CliError ? err : new CliError((err as Error).message, EXIT.FAILED)
      }
      const states = await fleet.states()
      const mem = await fleet.memory()
      const ready = {
        ready: true,
        seconds: Number(((Date.now() - started) / 1000).toFixed(1)),
        rest: conn.url,
        broker,
        org: o.org,
        ...(own === undefined ? {} : { credentials: own.credentials, cssRssMB: await rssMB(process.pid) }),
        workers: fleet.workers.map((w) => w.pid),
        workersRssMB: mem.workersMB,
        perEdgeKB: mem.perEdgeKB,
        orgLayerInstalled: fleet.orgLayerInstalled,
        edges: states.map((s) => ({ ...s, ports: fleet.ports.get(s.edge) }))
      }
      if (o.json === true) {
        io.stdout(JSON.stringify(ready) + '\n')
      } else {
        io.stdout(
          `Simulated fleet ready in ${ready.seconds} s: ${edges} edge(s) in ${o.sites} site(s) of org ${o.org}: ${summary(states)}\n`
        )
        io.stdout(
          `  CSS ${conn.url}, broker ${broker}; ${fleet.workers.length} worker process(es) using ${mem.workersMB} MB (${mem.perEdgeKB} kB per edge)\n`
        )
        if (states.length <= 20) {
          print(
            io,
            false,
            ready.edges.map((e) => ({
              ...e,
              devices: Object.entries(e.ports ?? {})
                .map(([d, p]) => `${d}:${p}`)
                .join(' ')
            })),
            ['edge', 'site', 'online', 'version', 'status', 'devices']
          )
        }
        io.stdout(
          o.duration === undefined
            ? 'Ctrl-C stops the fleet.\n'
            : `Stopping after ${o.duration} s (or Ctrl-C).\n`
        )
      }
      let cpu = { at: Date.now(), s: await fleet.cpuSeconds() }
      const report = setInterval(
        () => {
          void (async () => {
            const s = await fleet.states()
            const m = await fleet.memory()
            const now = { at: Date.now(), s: await fleet.cpuSeconds() }
            const pct = Math.round((100 * (now.s - cpu.s)) / ((now.at - cpu.at) / 1000))
            cpu = now
            io.stderr(`[${new Date().toISOString()}] ${summary(s)}; workers ${m.workersMB} MB, ${pct}% CPU\n`)
          })().catch((err: Error) => {
            io.stderr(`Fleet state unavailable: ${err.message}\n`)
          })
        },
        positive('--report-seconds', o.reportSeconds) * 1000
      )
      const timer =
        o.duration === undefined
          ? undefined
          : setTimeout(finish, positive('--duration', o.duration, 0) * 1000)
      await signalled
      clearInterval(report)
      clearTimeout(timer)
      await stop()
    })
}
