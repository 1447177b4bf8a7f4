/** Runs sync-css / sync-ess as real child processes (through tap's TypeScript loader) and reads their ready line. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'

export interface Proc { child: ChildProcess, line: string, stderr: () => string }

export async function startProcess (t: Test, which: 'css' | 'ess', env: Record<string, string>): Promise<Proc> {
  const file = fileURLToPath(new URL(`../../cmd/${which}.ts`, import.meta.url))
  const child = spawn(process.execPath, [...process.execArgv, file], { env: { ...process.env, SYNC_CONF: '/nonexistent', LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await gone
  })
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${which} did not start: ${err}`)), 60_000)
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready')) { clearTimeout(timer); resolve(out) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${which} exited with ${String(code)}: ${err}`)) })
  })
  return { child, line, stderr: () => err }
}

/** SIGKILLs a process started by startProcess and waits for it to be gone. */
export async function killProcess (p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return
  const gone = new Promise((resolve) => p.child.once('exit', resolve))
  p.child.kill('SIGKILL')
  await gone
}

/** The Open Horizon compat setup: a sync-css process and one sync-ess (org1/edge/n1) enrolled with it. */
export const OH_ADMIN = { key: 'ohadmin', secret: 'ohsecret' }
export const OH_APP = { key: 'edgeapp', secret: 'edgesecret' }

export async function startCssAndEss (t: Test, root: string): Promise<{ CSS: string, ESS: string }> {
  const admin = 'Basic ' + Buffer.from(`${OH_ADMIN.key}:${OH_ADMIN.secret}`).toString('base64')
  const css = await startProcess(t, 'css', { PERSISTENCE_ROOT_PATH: root, LISTENING_PORT: '0', MQTT_LISTENING_PORT: '0', ADMIN_KEY: OH_ADMIN.key, ADMIN_SECRET: OH_ADMIN.secret })
  const CSS = /REST (\S+)/.exec(css.line)?.[1] ?? ''
  const MQTT = /MQTT (\S+)/.exec(css.line)?.[1] ?? ''
  const enrolled = await (await fetch(`${CSS}/api/v1/nodes/org1/edge/n1/enroll`, { method: 'POST', headers: { authorization: admin } })).json() as { secret: string }
  const ess = await startProcess(t, 'ess', {
    PERSISTENCE_ROOT_PATH: root,
    LISTENING_PORT: '0',
    ORG_ID: 'org1',
    DESTINATION_TYPE: 'edge',
    DESTINATION_ID: 'n1',
    NODE_SECRET: enrolled.secret,
    BROKER_ADDRESS: MQTT,
    ADMIN_KEY: OH_APP.key,
    ADMIN_SECRET: OH_APP.secret
  })
  return { CSS, ESS: /REST (\S+)/.exec(ess.line)?.[1] ?? '' }
}
