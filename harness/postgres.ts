/**
 * Starts a throwaway PostgreSQL server (Debian's binaries) on a free loopback port in a temp
 * folder: the backend FerretDB uses in tests and benches where speed matters. PostgreSQL refuses
 * to run as root, so under root the server runs as the `postgres` user (Debian creates it).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { findBinary } from './find-binary.js'
import { freePort, waitForPort } from './ports.js'

const run = promisify(execFile)

export interface Postgres {
  /** postgres://... for the `ferretdb` database, trust auth on loopback. */
  url: string
  port: number
  stop: () => Promise<void>
}

/** Debian keeps the server binaries out of PATH, in a folder per major version. */
export function findPostgres (): string | undefined {
  for (const major of [17, 16, 15]) {
    const p = `/usr/lib/postgresql/${major}/bin/postgres`
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {}
  }
  return findBinary('postgres')
}

/** Runs `cmd` as the postgres user when we are root (PostgreSQL's own rule), else as ourselves. */
function asOwner (cmd: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
}

export async function startPostgres (postgresBin: string): Promise<Postgres> {
  const bin = path.dirname(postgresBin)
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-pg-'))
  const data = path.join(dir, 'data')
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    await chown(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  const [initCmd, initArgs] = asOwner(path.join(bin, 'initdb'), [
    '-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'
  ])
  await run(initCmd, initArgs)
  const port = await freePort()
  // A test server: no fsync (the data is thrown away), sockets only on loopback TCP.
  const [cmd, args] = asOwner(postgresBin, [
    '-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`,
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=260'
  ])
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  try {
    await waitForPort(port, 20_000)
    const [c, a] = asOwner(path.join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'ferretdb'])
    // The port opens a moment before the server accepts logins.
    for (let i = 0; ; i++) {
      try {
        await run(c, a)
        break
      } catch (err) {
        if (i >= 50) throw err
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  } catch (err) {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw new Error(`PostgreSQL did not start: ${stderr}`, { cause: err })
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/ferretdb`,
    port,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        // pg_ctl signals the server itself (runuser, between us and it, does not pass SIGINT on).
        const [c, a] = asOwner(path.join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-s'])
        await run(c, a).catch(() => {
          child.kill('SIGKILL')
        })
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}
