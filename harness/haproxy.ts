/**
 * HAProxy (Debian's) in front of several CSS instances on free loopback ports: one frontend per
 * service (REST as HTTP, MQTT as TCP), health-checked backends, so a dead instance leaves the
 * rotation within a second and a connection that finds it dead is sent to another one.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort } from './ports.js'
import { startServerProcess } from './server-process.js'

export interface Frontend {
  name: string
  mode: 'http' | 'tcp'
  /** host:port of each backend server. */
  servers: string[]
}

export interface Haproxy {
  /** The frontend's port, by name. */
  ports: Map<string, number>
  stop: () => Promise<void>
}

function section (f: Frontend, port: number): string[] {
  return [
    `frontend ${f.name}`,
    `  bind 127.0.0.1:${port}`,
    `  mode ${f.mode}`,
    `  default_backend ${f.name}_servers`,
    `backend ${f.name}_servers`,
    `  mode ${f.mode}`,
    // MQTT connections are long: spread them by count; REST requests in turn.
    `  balance ${f.mode === 'tcp' ? 'leastconn' : 'roundrobin'}`,
    ...(f.mode === 'http' ? ['  option httpchk GET /healthz'] : []),
    ...f.servers.map((s, i) => `  server s${i} ${s} check inter 300 fall 2 rise 1`)
  ]
}

/** `maxconn`: connections at once (two descriptors each; the file limit is raised to fit). */
export async function startHaproxy (bin: string, frontends: Frontend[], maxconn = 4000): Promise<Haproxy> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-haproxy-'))
  const ports = new Map<string, number>()
  for (const f of frontends) ports.set(f.name, await freePort())
  const cfg = [
    'global',
    `  maxconn ${maxconn}`,
    'defaults',
    '  timeout connect 2s',
    '  timeout client 10m',
    '  timeout server 10m',
    // Long polls and MQTT keepalives are quiet for a while: do not cut them.
    '  timeout tunnel 1h',
    '  retries 3',
    '  option redispatch',
    ...frontends.flatMap((f) => section(f, ports.get(f.name) ?? 0))
  ].join('\n') + '\n'
  const file = path.join(dir, 'haproxy.cfg')
  await writeFile(file, cfg)
  // -db: stay in the foreground. Through sh, to raise the open-file limit HAProxy checks against
  // maxconn (where we may).
  const proc = await startServerProcess('haproxy', 'sh', ['-c', `ulimit -n ${2 * maxconn + 1000} 2>/dev/null; exec "$0" -db -f "$1"`, bin, file], ports.values(), dir)
  return { ports, stop: proc.stop }
}
