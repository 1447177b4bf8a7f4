/** A throwaway Redis (Debian's redis-server) on a free loopback port, AOF on, in a temp folder. */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from './ports.js'
import { startServerProcess } from './server-process.js'

export interface RedisServer {
  url: string
  port: number
  stop: () => Promise<void>
}

export async function startRedis (bin: string): Promise<RedisServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-redis-'))
  const port = await freePort()
  // AOF on, as a deployment would run it (the brokers' queued messages live here).
  const proc = await startServerProcess('redis-server', bin, [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
    '--appendfsync', 'everysec', '--save', '', '--protected-mode', 'yes', '--daemonize', 'no'
  ], [port], dir)
  return { url: `redis://127.0.0.1:${port}`, port, stop: proc.stop }
}
