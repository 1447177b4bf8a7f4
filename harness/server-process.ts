/**
 * A throwaway server process (Redis, HAProxy): started in its own temp folder, ready once its
 * ports accept connections, its last output kept for the error if it does not start; `stop` ends
 * it (SIGTERM) and removes the folder.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { waitForPort } from './ports.js'

export async function startServerProcess (
  name: string,
  cmd: string,
  args: string[],
  ports: Iterable<number>,
  dir: string
): Promise<{ stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  try {
    for (const p of ports) await waitForPort(p, 10_000)
  } catch (err) {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw new Error(`${name} did not start: ${out}`, { cause: err })
  }
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}
