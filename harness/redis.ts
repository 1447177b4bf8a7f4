/** A throwaway Redis (Debian's redis-server) on a free loopback port, AOF on, in a temp folder. */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort, waitForPort } from './ports.js'

export interface RedisServer {
  url: string
  port: number
  stop: () => Promise<void>
}

export async function startRedis (bin: string): Promise<RedisServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-redis-'))
  const port = await freePort()
  // AOF on, as a deployment would run it (the brokers' queued messages live here).
  const child: ChildProcess = spawn(bin, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
    '--appendfsync', 'everysec', '--save', '', '--protected-mode', 'yes', '--daemonize', 'no'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  try {
    await waitForPort(port, 10_000)
  } catch (err) {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw new Error(`redis-server did not start: ${out}`, { cause: err })
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
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
