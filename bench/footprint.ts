/**
 * Footprint (issue #22): idle RSS and start-to-ready of the ESS (alone, and FOOTPRINT_TOGETHER
 * (10) started at once, as after a site's power cut) and of the CSS, each a real process on this
 * machine, against a bare Node process (the runtime's own floor) measured in the same run. RSS is
 * read from /proc after FOOTPRINT_IDLE_S (3) seconds idle, connected and registered.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { privateMB, pssMB, rssMB, startBenchCss, type BenchCss, type BenchNode } from './lib/css.js'
import { printTable, writeResult } from './lib/report.js'
import { sleep } from './fanout.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ESS = path.join(HERE, '..', 'cmd', 'ess.js')

interface Started { child: ChildProcess, ms: number }

/**
 * The node flags the ESS ships with (Dockerfile.ess, `npm run start:ess`): V8's young generation
 * capped at 1 MB a half instead of growing to 16 MB, the largest part of an idle edge's own memory.
 */
export const ESS_NODE_FLAGS = ['--max-semi-space-size=1']

/** Spawns a process and resolves when its stdout says `ready` (ms from spawn). */
async function startReady (args: string[], env: Record<string, string>): Promise<Started> {
  const t0 = performance.now()
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  return await new Promise<Started>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready')) resolve({ child, ms: Math.round(performance.now() - t0) })
    })
    child.once('exit', (code) => { reject(new Error(`exited with ${String(code)}: ${err.slice(-500)}`)) })
  })
}

async function stopAll (list: ChildProcess[]): Promise<void> {
  await Promise.all(list.map(async (c) => {
    if (c.exitCode !== null || c.signalCode !== null) return
    const gone = new Promise((resolve) => c.once('exit', resolve))
    c.kill('SIGTERM')
    await gone
  }))
}

async function startEss (css: BenchCss, node: BenchNode, dir: string, flags: string[] = ESS_NODE_FLAGS, env: Record<string, string> = {}): Promise<Started> {
  return await startReady([...flags, ESS], {
    ...env,
    SYNC_CONF: '/nonexistent',
    LOG_LEVEL: 'error',
    PERSISTENCE_ROOT_PATH: dir,
    LISTENING_PORT: '0',
    ORG_ID: 'bench',
    DESTINATION_TYPE: 'edge',
    DESTINATION_ID: node.id,
    NODE_SECRET: node.secret,
    BROKER_ADDRESS: css.mqttUrl,
    ADMIN_KEY: 'app',
    ADMIN_SECRET: 'app-secret'
  })
}

const mean = (v: number[]): number => Math.round(v.reduce((a, b) => a + b, 0) / Math.max(1, v.length))

/** RSS, the process's own (anonymous) part, and its proportional share (PSS), in MB. */
async function memory (pids: number[]): Promise<Record<string, number>> {
  const each = async (f: (pid: number) => Promise<number>): Promise<number> => mean(await Promise.all(pids.map(f)))
  return { 'idle RSS (MB)': await each(rssMB), 'own (anon) MB': await each(privateMB), 'PSS (MB)': await each(pssMB) }
}

export async function runFootprintBench (together: number, idleS: number): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  // The floor: a bare Node process that only stays alive.
  const bare = await startReady(['-e', "process.stdout.write('ready\\n'); setInterval(() => {}, 1000)"], {})
  await sleep(idleS * 1000)
  rows.push({ what: 'bare node (floor)', processes: 1, 'start to ready (ms)': bare.ms, ...await memory([bare.child.pid ?? 0]) })
  await stopAll([bare.child])

  const t0 = performance.now()
  const css = await startBenchCss('aedes+local')
  const cssStart = Math.round(performance.now() - t0)
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-footprint-'))
  try {
    await sleep(idleS * 1000)
    rows.push({ what: 'CSS (aedes+local)', processes: 1, 'start to ready (ms)': cssStart, ...await memory([css.pid]) })
    const nodes = await css.enroll(together + 3)
    // The same ESS three ways: as shipped, with Node's default young generation, without metrics.
    const ways: Array<[string, string[], Record<string, string>]> = [
      ['ESS alone (no plugin)', ESS_NODE_FLAGS, {}],
      ['  same, node defaults (no flags)', [], {}],
      ['  same, Metrics false', ESS_NODE_FLAGS, { METRICS: 'false' }]
    ]
    for (const [i, [what, flags, env]] of ways.entries()) {
      const alone = await startEss(css, nodes[i] as BenchNode, path.join(dir, `alone${i}`), flags, env)
      await sleep(idleS * 1000)
      rows.push({ what, processes: 1, 'start to ready (ms)': alone.ms, ...await memory([alone.child.pid ?? 0]) })
      await stopAll([alone.child])
    }
    const t1 = performance.now()
    const many = await Promise.all(nodes.slice(3).map(async (n) => await startEss(css, n, path.join(dir, n.id))))
    const allReady = Math.round(performance.now() - t1)
    await sleep(idleS * 1000)
    rows.push({ what: `ESS, ${together} started at once (each)`, processes: together, 'start to ready (ms)': `${allReady} (all)`, ...await memory(many.map((m) => m.child.pid ?? 0)) })
    await stopAll(many.map((m) => m.child))
  } finally {
    await css.stop()
    await rm(dir, { recursive: true, force: true })
  }
  printTable(`Footprint on this machine (${process.version})`, rows)
  await writeResult('footprint', { rows, together, idleS })
}
