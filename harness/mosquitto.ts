/** A real Mosquitto on a free loopback port, with password and ACL files we can rewrite and reload (SIGHUP). */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort, waitForPort } from './ports.js'

export interface Mosquitto {
  /** The CSS's listener. */
  url: string
  /**
   * The edges' listener: `use_username_as_clientid`, so a node's client id is its username and no
   * node can take over another's session (what the embedded broker enforces by itself).
   */
  edgeUrl: string
  port: number
  /** Rewrites passwd/acl and makes Mosquitto reload them. */
  setAuth: (passwd: string, acl: string) => Promise<void>
  /** `SIGKILL` for a crash (`kill -9`); SIGTERM by default. */
  stop: (signal?: NodeJS.Signals) => Promise<void>
}

/** `opts.port`, `opts.edgePort`: fixed ports (to bring a stopped broker back where its clients look for it). */
export async function startMosquitto (
  bin: string,
  passwd: string,
  acl: string,
  opts: { port?: number; edgePort?: number } = {}
): Promise<Mosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-mosq-'))
  const port = opts.port ?? (await freePort())
  const edgePort = opts.edgePort ?? (await freePort())
  const write = async (p: string, a: string): Promise<void> => {
    await writeFile(path.join(dir, 'passwd'), p + '\n')
    await writeFile(path.join(dir, 'acl'), a + '\n')
    // Started as root, mosquitto drops to its own user, which must be able to read the files.
    for (const f of ['passwd', 'acl']) {
      await chmod(path.join(dir, f), 0o600)
      await chown(path.join(dir, f), ...(await mosquittoIds())).catch(() => {})
    }
  }
  await chmod(dir, 0o755)
  await write(passwd, acl)
  await writeFile(
    path.join(dir, 'mosquitto.conf'),
    [
      'per_listener_settings false',
      'persistence false',
      `listener ${port} 127.0.0.1`,
      `listener ${edgePort} 127.0.0.1`,
      'use_username_as_clientid true',
      'allow_anonymous false',
      `password_file ${path.join(dir, 'passwd')}`,
      `acl_file ${path.join(dir, 'acl')}`,
      'log_dest stderr',
      'log_type error',
      'max_queued_messages 100000'
    ].join('\n') + '\n'
  )
  const child: ChildProcess = spawn(bin, ['-c', path.join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
  })
  try {
    await waitForPort(port, 10_000)
    await waitForPort(edgePort, 10_000)
  } catch (e) {
    child.kill('SIGKILL')
    throw new Error(`mosquitto did not start: ${err}`, { cause: e })
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    edgeUrl: `mqtt://127.0.0.1:${edgePort}`,
    port,
    setAuth: async (p, a) => {
      await write(p, a)
      child.kill('SIGHUP')
      await new Promise((resolve) => setTimeout(resolve, 200))
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve))
        child.kill(signal)
        await gone
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}

async function mosquittoIds (): Promise<[number, number]> {
  const { readFile } = await import('node:fs/promises')
  const line = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.startsWith('mosquitto:'))
  const parts = line?.split(':') ?? []
  return [Number(parts[2] ?? 0), Number(parts[3] ?? 0)]
}
