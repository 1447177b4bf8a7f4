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
    const timer = setTimeout(() => reject(new Error(`${which} did not start: ${err}`)), 30_000)
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
