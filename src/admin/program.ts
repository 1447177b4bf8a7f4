/** syncctl: the admin CLI over the CSS REST API. The only `commander` import. */
import { Command } from 'commander'
import { configExampleText, configJsonSchema } from '../common/config/schema.js'
import { addCertsCommand } from './certs-command.js'

export interface Io {
  stdout: (s: string) => void
  stderr: (s: string) => void
  fetch: typeof fetch
  env: NodeJS.ProcessEnv
}

function conn (cmd: Command, io: Io): { url: string, auth: string } {
  const o = cmd.optsWithGlobals<{ url?: string, key?: string, secret?: string }>()
  const url = o.url ?? io.env.SYNC_URL ?? 'http://127.0.0.1:8080'
  const key = o.key ?? io.env.SYNC_KEY ?? ''
  const secret = o.secret ?? io.env.SYNC_SECRET ?? ''
  return { url, auth: `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}` }
}

async function call (io: Io, cmd: Command, method: string, path: string): Promise<unknown> {
  const c = conn(cmd, io)
  const res = await io.fetch(`${c.url}${path}`, { method, headers: { authorization: c.auth } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`)
  return text === '' ? undefined : JSON.parse(text)
}

export function createProgram (io: Io): Command {
  const program = new Command('syncctl')
    .description('edgesync admin CLI (talks to the CSS REST API)')
    .option('--url <url>', 'CSS REST URL (env SYNC_URL)', undefined)
    .option('--key <appKey>', 'app key (env SYNC_KEY)')
    .option('--secret <secret>', 'app secret (env SYNC_SECRET)')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })

  const config = program.command('config').description('configuration helpers')
  config.command('example').description('print sync.conf.example (every key, description and default)').action(() => { io.stdout(configExampleText()) })
  config.command('schema').description('print the JSON Schema of sync.conf').action(() => { io.stdout(JSON.stringify(configJsonSchema(), null, 2) + '\n') })

  const nodes = program.command('nodes').description('edge nodes')
  nodes.command('enroll <org> <destType> <destId>').description('create broker credentials for a node and print its ESS config').action(async (org: string, t: string, id: string, _o, cmd: Command) => {
    const r = await call(io, cmd, 'POST', `/api/v1/nodes/${org}/${t}/${id}/enroll`) as { secret: string }
    io.stdout(`NodeType ESS\nOrgID ${org}\nDestinationType ${t}\nDestinationID ${id}\nNodeSecret ${r.secret}\n`)
  })
  nodes.command('list <org>').description('list registered nodes').option('--json', 'JSON output').action(async (org: string, o: { json?: boolean }, cmd: Command) => {
    const list = await call(io, cmd, 'GET', `/api/v1/destinations/${org}`) as Array<Record<string, unknown>>
    if (o.json === true) { io.stdout(JSON.stringify(list, null, 2) + '\n'); return }
    for (const n of list) io.stdout(`${String(n.destinationType)}/${String(n.destinationID)}\t${n.online === true ? 'online' : 'offline'}\t${String(n.lastPingTime)}\n`)
  })

  const objects = program.command('objects').description('objects')
  objects.command('destinations <org> <type> <id>').description('delivery status per destination').option('--json', 'JSON output').action(async (org: string, t: string, id: string, o: { json?: boolean }, cmd: Command) => {
    const list = await call(io, cmd, 'GET', `/api/v1/objects/${org}/${t}/${id}/destinations`) as Array<Record<string, unknown>>
    if (o.json === true) { io.stdout(JSON.stringify(list, null, 2) + '\n'); return }
    for (const d of list) io.stdout(`${String(d.destinationType)}/${String(d.destinationID)}\t${String(d.status)}\t${String(d.instanceID)}\t${String(d.detail)}\n`)
  })
  addCertsCommand(program, io)
  return program
}
