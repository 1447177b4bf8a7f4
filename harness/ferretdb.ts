/**
 * Starts a real FerretDB (MongoDB wire protocol) on a free loopback port, on SQLite in a temp
 * folder, or on PostgreSQL (`backend: 'postgresql'`, a throwaway server started here): the
 * faster one, used where speed matters (FerretDB on SQLite serializes writers).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort, waitForPort } from './ports.js'
import { findPostgres, startPostgres, type Postgres } from './postgres.js'

export interface FerretDb {
  uri: string
  port: number
  dir: string
  backend: 'sqlite' | 'postgresql'
  stop: (opts?: { keepData?: boolean }) => Promise<void>
}

/**
 * The backend benches use: PostgreSQL where it is installed (FerretDB on SQLite serializes
 * writers: about 50 delivery updates/s), unless FERRETDB_BACKEND says otherwise.
 */
export function ferretBackend (): 'sqlite' | 'postgresql' {
  const asked = process.env.FERRETDB_BACKEND
  if (asked === 'sqlite' || asked === 'postgresql') return asked
  return findPostgres() === undefined ? 'sqlite' : 'postgresql'
}

/**
 * FerretDB 1.x (PostgreSQL) holds one PostgreSQL connection for an update's query while it takes a
 * second one for the write: with as many updates in flight as its pool has connections, every one
 * waits for a second connection and FerretDB stops answering (seen: a 100-edge fan-out on the
 * embedded broker froze it). So each client gets a pool of `CLIENT_POOL` and FerretDB a pool of
 * `PG_POOL`, enough for two clients' pools twice over (two CSS instances in the scale-out tests).
 */
const CLIENT_POOL = 50
const PG_POOL = 220

/**
 * `port` and `dir`: a fixed port and data folder, to bring a stopped server back where its clients
 * look for it, with its data (stop it with `keepData`; SQLite only).
 */
export async function startFerretDb (
  bin: string,
  opts: { port?: number; dir?: string; backend?: 'sqlite' | 'postgresql' } = {}
): Promise<FerretDb> {
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'edgesync-ferret-')))
  const port = opts.port ?? (await freePort())
  const backend = opts.backend ?? 'sqlite'
  let pg: Postgres | undefined
  if (backend === 'postgresql') {
    const pgBin = findPostgres()
    if (pgBin === undefined) throw new Error('PostgreSQL not found (apt-get install postgresql)')
    pg = await startPostgres(pgBin)
  }
  const child: ChildProcess = spawn(
    bin,
    [
      ...(pg === undefined
        ? ['--handler=sqlite', `--sqlite-url=file:${dir}/`]
        : ['--handler=postgresql', `--postgresql-url=${pg.url}?pool_max_conns=${PG_POOL}`]),
      `--listen-addr=127.0.0.1:${port}`,
      `--state-dir=${dir}`,
      `--debug-addr=${process.env.FERRETDB_DEBUG_ADDR ?? '-'}`,
      '--telemetry=disable',
      '--log-level=error'
    ],
    {
      env: { ...process.env, FERRETDB_TELEMETRY: 'disable', DO_NOT_TRACK: '1' },
      stdio: ['ignore', 'ignore', 'pipe']
    }
  )
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  try {
    await waitForPort(port, 15_000)
  } catch (err) {
    child.kill('SIGKILL')
    await pg?.stop()
    throw new Error(`FerretDB did not start: ${stderr}`, { cause: err })
  }
  return {
    uri: `mongodb://127.0.0.1:${port}/?maxPoolSize=${CLIENT_POOL}`,
    port,
    dir,
    backend,
    stop: async (o = {}) => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      if (o.keepData !== true) {
        await pg?.stop()
        await rm(dir, { recursive: true, force: true })
      }
    }
  }
}
