/**
 * The CSS under test as a child process (so its RSS and CPU are its own): embedded Aedes + local
 * store, or an external Mosquitto + mongo on FerretDB. Enrolls bench nodes (and, with Mosquitto,
 * writes their password and ACL lines and reloads it).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { forEachLimit } from '../../src/common/concurrency.js'
import { mosquittoAclText, mosquittoPasswordLine } from '../../src/security/index.js'
import { ferretBackend, startFerretDb, type FerretDb } from '../../harness/ferretdb.js'
import { findBinary } from '../../harness/find-binary.js'
import { startMosquitto, type Mosquitto } from '../../harness/mosquitto.js'
import { freePort } from '../../harness/ports.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
export const ADMIN_AUTH = 'Basic ' + Buffer.from('bench:bench-secret').toString('base64')
export const ADMIN_JSON = { authorization: ADMIN_AUTH, 'content-type': 'application/json' }

export type Variant = 'aedes+local' | 'mosquitto+mongo'
export interface BenchNode { id: string, secret: string }

export interface BenchCss {
  base: string
  mqttUrl: string
  pid: number
  variant: Variant
  /** Enrolls `<prefix>0..<prefix>n-1` of type `edge` in org `bench`, a few at a time. */
  enroll: (n: number, prefix?: string) => Promise<BenchNode[]>
  stop: () => Promise<void>
}

export { cpuSeconds, privateMB, pssMB, rssMB } from '../../src/common/proc-stats.js'

function need (name: string): string {
  const bin = findBinary(name)
  if (bin === undefined) throw new Error(`${name} not found (SYNC_TOOLS_DIR, ~/.cache/edgesync/bin, PATH): the mosquitto+mongo variant needs it`)
  return bin
}

export async function startBenchCss (variant: Variant, extraEnv: Record<string, string> = {}): Promise<BenchCss> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-bench-css-'))
  const restPort = await freePort()
  const mqttPort = await freePort()
  let db: FerretDb | undefined
  let mosq: Mosquitto | undefined
  const env: Record<string, string> = {
    SYNC_CONF: '/nonexistent',
    LOG_LEVEL: process.env.BENCH_CSS_LOG ?? 'error',
    PERSISTENCE_ROOT_PATH: dir,
    LISTENING_PORT: String(restPort),
    MQTT_LISTENING_PORT: String(mqttPort),
    ADMIN_KEY: 'bench',
    ADMIN_SECRET: 'bench-secret',
    // One admin key enrolls and publishes in bursts far above the per-key default.
    RATE_LIMIT_PER_SECOND: '1000000',
    ...extraEnv
  }
  const cssLine = mosquittoPasswordLine('css', 'css-secret')
  let css: ChildProcess | undefined
  const stop = async (): Promise<void> => {
    if (css !== undefined && css.exitCode === null && css.signalCode === null) {
      const gone = new Promise((resolve) => css?.once('exit', resolve))
      css.kill('SIGTERM')
      // A CSS that cannot finish its graceful stop in 30 s is killed: the bench must end.
      const hard = setTimeout(() => css?.kill('SIGKILL'), 30_000)
      await gone
      clearTimeout(hard)
    }
    await mosq?.stop()
    await db?.stop()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    if (variant === 'mosquitto+mongo') {
      db = await startFerretDb(need('ferretdb'), { backend: ferretBackend() })
      mosq = await startMosquitto(need('mosquitto'), cssLine, mosquittoAclText('css', []))
      Object.assign(env, { STORAGE_PROVIDER: 'mongo', MONGO_URI: db.uri, MONGO_DB_NAME: 'bench', BROKER_MODE: 'external', BROKER_ADDRESS: mosq.url, BROKER_USERNAME: 'css', BROKER_PASSWORD: 'css-secret' })
    }
    const child = spawn(process.execPath, [...(process.env.CSS_PROF === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${process.env.CSS_PROF}`]), path.join(HERE, '..', '..', 'cmd', 'css.js')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    css = child
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve() })
      child.once('exit', (code) => { reject(new Error(`CSS exited with ${String(code)}`)) })
    })
  } catch (err) {
    await stop() // what did start (FerretDB, Mosquitto, the folder) must not outlive a failed start
    throw err
  }
  const pid = css.pid ?? 0
  const base = `http://127.0.0.1:${restPort}`
  return {
    base,
    mqttUrl: mosq?.url ?? `mqtt://127.0.0.1:${mqttPort}`,
    pid,
    variant,
    enroll: async (n, prefix = 'e') => {
      const nodes: BenchNode[] = new Array<BenchNode>(n)
      await forEachLimit(Array.from({ length: n }, (_, i) => `${prefix}${i}`), 32, async (id, i) => {
        const r = await fetch(`${base}/api/v1/nodes/bench/edge/${id}/enroll`, { method: 'POST', headers: { authorization: ADMIN_AUTH } })
        if (r.status !== 201) throw new Error(`enroll ${id}: ${r.status} ${await r.text()}`)
        nodes[i] = { id, secret: ((await r.json()) as { secret: string }).secret }
      })
      if (mosq !== undefined) {
        const keys = nodes.map((x) => ({ orgId: 'bench', destinationType: 'edge', destinationId: x.id }))
        await mosq.setAuth([cssLine, ...nodes.map((x) => mosquittoPasswordLine(`bench/edge/${x.id}`, x.secret))].join('\n'), mosquittoAclText('css', keys))
      }
      return nodes
    },
    stop
  }
}
