/**
 * `syncctl sim --with-css` as a user runs it: a real process with its own CSS and N edges, each a
 * real ESS with the EMS plugin polling its own simulated Modbus TCP devices. Resolves with the
 * simulator's JSON ready line; stopped (SIGKILL if need be) at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { ModbusConnection } from '../../src/ems/edge/modbus.js'
import { loadProfiles } from '../../src/ems/common/profiles.js'

export interface SimReady {
  rest: string
  broker: string
  credentials: string
  workers: number[]
  edges: Array<{ edge: string, site: string, online: boolean, version?: number, status?: string, ports: Record<string, number> }>
}

export interface Sim {
  ready: SimReady
  child: ChildProcess
  exited: Promise<number | null>
  stderr: () => string
  /** The sim's admin (a sync admin): key and secret. */
  admin: () => Promise<{ appKey: string, secret: string }>
}

const SYNCCTL = fileURLToPath(new URL('../../cmd/syncctl.ts', import.meta.url))
const SET_POWER = loadProfiles().get('battery')?.channels.SetPower

export async function startSim (t: Test, args: string[]): Promise<Sim> {
  const child = spawn(process.execPath, [...process.execArgv, SYNCCTL, 'sim', '--with-css', '--css-port', '0', '--mqtt-port', '0', '--json', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { resolve(code) }))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const ready = await new Promise<SimReady>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { reject(new Error(`sim not ready after 120 s: ${err}`)) }, 120_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line !== undefined) { clearTimeout(timer); resolve(JSON.parse(line) as SimReady) }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`sim exited with ${String(code)}: ${err}`)) })
  })
  const admin = async (): Promise<{ appKey: string, secret: string }> =>
    JSON.parse(await readFile(ready.credentials, 'utf8')) as { appKey: string, secret: string }
  return { ready, child, exited, stderr: () => err, admin }
}

/** The setpoint last written to a simulated battery, read over Modbus TCP as any client would. */
export async function batterySetpoint (port: number): Promise<number> {
  if (SET_POWER === undefined) throw new Error('battery profile has no SetPower')
  const c = new ModbusConnection('127.0.0.1', port)
  try { return await c.read(1, SET_POWER) } finally { c.close() }
}
