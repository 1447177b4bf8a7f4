/** syncctl: the admin CLI over the CSS REST API. The only `commander` import. */
import { readFile, writeFile, appendFile } from 'node:fs/promises'
import { Command, Option } from 'commander'
import { configExampleText, configJsonSchema } from '../common/config/schema.js'
import { mosquittoAclText, mosquittoPasswordLine } from '../security/index.js'
import { addCertsCommand } from './certs-command.js'
import { addEmsCommand } from './ems-command.js'
import { addSimCommand } from './sim-command.js'
import { addPluginCommand } from './plugin-command.js'
import { addRolloutCommand } from './rollout-command.js'
import { call, CliError, connection, EXIT, print, type Io } from './client.js'
import { VERSION } from '../common/version.js'

export type { Io } from './client.js'

const HELP_AFTER = `
Connection: --url/--key/--secret, else SYNC_URL/SYNC_KEY/SYNC_SECRET, else --profile NAME (or
SYNC_PROFILE) from SYNCCTL_CONFIG or ~/.config/edgesync/syncctl.json:
  { "profiles": { "prod": { "url": "https://css:8080", "key": "admin", "secret": "..." } } }
For an HTTPS CSS with a private CA, run with NODE_EXTRA_CA_CERTS=certs/ca.pem.
Output: tables for people, --json for scripts.
Exit codes: 0 ok, 1 failed, 2 usage or local file error, 3 not found, 4 not authenticated or
not allowed, 5 rejected (validation, conflict), 6 CSS unreachable, busy or failing.`

type Json = Array<Record<string, unknown>>

/** `objects put --file` sends data up to this size inline (base64 in the JSON body). */
const INLINE_PUT_BYTES = 512 * 1024

export function createProgram (terminal: Io): Command {
  // `--json` on a command without its own JSON output: its text is held back and the last
  // structured result (the CSS's answer, or the command's own) is printed instead.
  const held = { on: false, results: [] as unknown[], text: '' }
  const io: Io = {
    ...terminal,
    stdout: (s) => {
      if (held.on) held.text += s
      else terminal.stdout(s)
    },
    result: (v) => { held.results.push(v) }
  }
  const program = new Command('syncctl')
    .version(VERSION, '--version', 'print the version')
    .description('edgesync admin CLI (talks to the CSS REST API)')
    .option('--url <url>', 'CSS REST URL (env SYNC_URL)')
    .option('--key <appKey>', 'app key (env SYNC_KEY)')
    .option('--secret <secret>', 'app secret (env SYNC_SECRET)')
    .option('--profile <name>', 'connection profile (env SYNC_PROFILE)')
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
  program.showHelpAfterError()

  const config = program.command('config').description('configuration helpers')
  config
    .command('example')
    .description('print sync.conf.example (every key, description and default)')
    .action(() => {
      io.stdout(configExampleText())
    })
  config
    .command('schema')
    .description('print the JSON Schema of sync.conf')
    .action(() => {
      io.stdout(JSON.stringify(configJsonSchema(), null, 2) + '\n')
    })

  addNodeCommands(program, io)
  addObjectCommands(program, io)
  addUserCommands(program, io)
  addAclCommands(program, io)
  addCertsCommand(program, io)
  addEmsCommand(program, io)
  addPluginCommand(program, io)
  addRolloutCommand(program, io)
  addSimCommand(program, io)
  const generic = addJsonEverywhere(program)
  program.hook('preAction', (_p, action) => {
    held.on = generic.has(action) && action.opts<{ json?: boolean }>().json === true
    held.results = []
    held.text = ''
  })
  program.hook('postAction', () => {
    if (!held.on) return
    held.on = false
    const last = held.results.at(-1)
    terminal.stdout(JSON.stringify(last ?? { ok: true, output: held.text }, null, 2) + '\n')
  })
  return program
}

/**
 * The ESS's sync.conf for an enrolled node: identity, secret, signing key, and where the broker is
 * (the CSS's broker port on the host syncctl reached the CSS at; TLS listeners preferred, with the
 * CA line they need).
 */
export function essSnippet (
  org: string, t: string, id: string, r: { secret: string, signingKey?: string, brokerUrls?: string[] }, cssUrl: string
): string {
  const urls = r.brokerUrls ?? []
  const broker = urls.find((u) => /^(mqtts|wss):/.test(u)) ?? urls[0]
  const lines = ['NodeType ESS', `OrgID ${org}`, `DestinationType ${t}`, `DestinationID ${id}`, `NodeSecret ${r.secret}`]
  if (r.signingKey !== undefined) lines.push(`SigningKey ${r.signingKey}`)
  if (broker !== undefined) {
    const b = new URL(broker)
    b.hostname = new URL(cssUrl).hostname
    lines.push(`BrokerAddress ${b.href.replace(/\/$/, '')}`)
    if (/^(mqtts|wss):/.test(b.protocol)) {
      lines.push('CaCertificate ca.pem    # a copy of the CA that signed the CSS certificate (syncctl certs ca)')
    }
  }
  return lines.join('\n') + '\n'
}

/** Gives every command that lacks one a `--json` option; returns those commands. */
function addJsonEverywhere (root: Command): Set<Command> {
  const added = new Set<Command>()
  const walk = (c: Command): void => {
    if (c.commands.length > 0) {
      for (const sub of c.commands) walk(sub)
      return
    }
    if (c.options.some((o) => o.attributeName() === 'json')) return
    c.option('--json', 'JSON output (the result as the CSS answered it)')
    added.add(c)
  }
  walk(root)
  return added
}

function addNodeCommands (program: Command, io: Io): void {
  const nodes = program.command('nodes').description('edge nodes: enroll, list, remove')
  nodes
    .command('enroll <org> <destType> <destId>')
    .description('create broker credentials for a node and print its ESS config (secret shown once)')
    .option('--mosquitto-passwd <file>', 'also append the node to this Mosquitto password file')
    .option(
      '--rotate',
      'the node is enrolled already: issue a new secret (its ESS needs it at its next start)'
    )
    .action(
      async (
        org: string,
        t: string,
        id: string,
        o: { mosquittoPasswd?: string; rotate?: boolean },
        cmd: Command
      ) => {
        const r = (await call(
          io,
          cmd,
          'POST',
          `/api/v1/nodes/${org}/${t}/${id}/enroll${o.rotate === true ? '?rotate=true' : ''}`
        )) as { appKey: string; secret: string; signingKey?: string; brokerUrls?: string[] }
        if (o.mosquittoPasswd !== undefined) {
          await appendFile(o.mosquittoPasswd, mosquittoPasswordLine(r.appKey, r.secret) + '\n', {
            mode: 0o600
          })
        }
        io.stdout(essSnippet(org, t, id, r, connection(cmd, io).url))
      }
    )
  nodes
    .command('list <org>')
    .description('registered nodes: online state, last heartbeat')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      const list = (await call(io, cmd, 'GET', `/api/v1/destinations/${org}`)) as Json
      print(
        io,
        o.json,
        list.map((n) => ({
          ...n,
          node: `${String(n.destinationType)}/${String(n.destinationID)}`,
          state: n.online === true ? 'online' : 'offline'
        })),
        ['node', 'state', 'lastPingTime', 'codeVersion']
      )
    })
  nodes
    .command('remove <org> <destType> <destId>')
    .description('remove a node: its credentials (its connection is dropped) and registration')
    .action(async (org: string, t: string, id: string, _o, cmd: Command) => {
      await call(io, cmd, 'DELETE', `/api/v1/nodes/${org}/${t}/${id}`)
      io.stdout(`removed ${org}/${t}/${id}\n`)
    })
  nodes
    .command('mosquitto-acl <org>')
    .description('print a Mosquitto ACL file for the CSS account and every node of the org')
    .requiredOption('--css-user <name>', 'the CSS account on the broker')
    .action(async (org: string, o: { cssUser: string }, cmd: Command) => {
      const users = (await call(io, cmd, 'GET', `/api/v1/users/${org}`)) as Array<{
        appKey: string
        role: string
      }>
      const nodes = users
        .filter((u) => u.role === 'node')
        .map((u) => {
          const [orgId = '', destinationType = '', destinationId = ''] = u.appKey.split('/')
          return { orgId, destinationType, destinationId }
        })
      io.stdout(mosquittoAclText(o.cssUser, nodes))
    })
}

function objectPath (org: string, type: string, id: string): string {
  return `/api/v1/objects/${org}/${type}/${id}`
}

function addObjectCommands (program: Command, io: Io): void {
  const objects = program
    .command('objects')
    .description('objects: put, get, list, delete, status, destinations')
  objects
    .command('put <org> <type> <id>')
    .description('create or update an object; data from --file (streamed as a separate upload)')
    .option('--file <file>', 'data file')
    .option('--dest-type <type>', 'destination type (all nodes of the type unless --dest-id)')
    .option('--dest-id <id>', 'one destination id')
    .option('--dests <list>', 'comma-separated type:id destinations')
    .option('--meta <json>', 'more metadata fields as JSON (version, expiration, activationTime, ...)')
    .action(
      async (
        org: string,
        t: string,
        id: string,
        o: { file?: string; destType?: string; destId?: string; dests?: string; meta?: string },
        cmd: Command
      ) => {
        let extra: Record<string, unknown> = {}
        if (o.meta !== undefined) {
          try {
            extra = JSON.parse(o.meta) as Record<string, unknown>
          } catch {
            throw new CliError('--meta is not valid JSON', EXIT.USAGE)
          }
        }
        const meta = {
          ...extra,
          ...(o.destType === undefined ? {} : { destinationType: o.destType }),
          ...(o.destId === undefined ? {} : { destinationID: o.destId }),
          ...(o.dests === undefined ? {} : { destinationsList: o.dests.split(',') })
        }
        let data: Buffer | undefined
        if (o.file !== undefined) {
          try {
            data = await readFile(o.file)
          } catch (err) {
            throw new CliError(`Cannot read ${o.file}: ${(err as Error).message}`, EXIT.USAGE)
          }
        }
        // Small data travels inside the object write: one write, one instance. Larger data is
        // streamed after the metadata (the object is published once its data is complete).
        if (data !== undefined && data.length <= INLINE_PUT_BYTES) {
          await call(io, cmd, 'PUT', objectPath(org, t, id), { meta, data: data.toString('base64') })
        } else {
          await call(io, cmd, 'PUT', objectPath(org, t, id), { meta })
          if (data !== undefined) await call(io, cmd, 'PUT', `${objectPath(org, t, id)}/data`, data)
        }
        const m = (await call(io, cmd, 'GET', objectPath(org, t, id))) as Record<string, unknown>
        io.stdout(
          `stored ${org}/${t}/${id} instance ${String(m.instanceID)}${data === undefined ? '' : ` (${data.length} bytes)`}\n`
        )
      }
    )
  objects
    .command('get <org> <type> <id>')
    .description('metadata (or the data with --data, to stdout or --out)')
    .option('--data', 'fetch the data')
    .option('--out <file>', 'write the data to a file')
    .option('--json', 'JSON output')
    .action(
      async (
        org: string,
        t: string,
        id: string,
        o: { data?: boolean; out?: string; json?: boolean },
        cmd: Command
      ) => {
        if (o.data === true || o.out !== undefined) {
          const bytes = (await call(
            io,
            cmd,
            'GET',
            `${objectPath(org, t, id)}/data`,
            undefined,
            true
          )) as Buffer
          if (o.out !== undefined) await writeFile(o.out, bytes)
          else io.stdout(bytes.toString('utf8'))
          return
        }
        const m = (await call(io, cmd, 'GET', objectPath(org, t, id))) as Record<string, unknown>
        if (o.json === true) {
          io.stdout(JSON.stringify(m, null, 2) + '\n')
          return
        }
        for (const k of [
          'objectType',
          'objectID',
          'instanceID',
          'status',
          'objectSize',
          'dataHash',
          'destinationType',
          'destinationID',
          'destinationsList',
          'version',
          'expiration',
          'activationTime',
          'lastUpdate'
        ]) {
          if (m[k] !== undefined) {
            io.stdout(`${k.padEnd(16)}${typeof m[k] === 'object' ? JSON.stringify(m[k]) : String(m[k])}\n`)
          }
        }
      }
    )
  objects
    .command('list <org> [type]')
    .description('objects of an org (or of one type)')
    .option('--json', 'JSON output')
    .action(async (org: string, t: string | undefined, o: { json?: boolean }, cmd: Command) => {
      let list: Json
      try {
        list = (await call(
          io,
          cmd,
          'GET',
          `/api/v1/objects/${org}?filters=true${t === undefined ? '' : `&objectType=${encodeURIComponent(t)}`}`
        )) as Json
      } catch (err) {
        if ((err as CliError).exitCode !== EXIT.NOT_FOUND) throw err
        list = [] // Open Horizon's API answers an empty listing with 404
      }
      print(io, o.json, list, ['objectType', 'objectID', 'instanceID', 'status', 'objectSize', 'lastUpdate'])
    })
  objects
    .command('delete <org> <type> <id>')
    .description('delete an object (every destination is told)')
    .action(async (org: string, t: string, id: string, _o, cmd: Command) => {
      await call(io, cmd, 'DELETE', objectPath(org, t, id))
      io.stdout(`deleted ${org}/${t}/${id}\n`)
    })
  objects
    .command('status <org> <type> <id>')
    .description('the object status string')
    .action(async (org: string, t: string, id: string, _o, cmd: Command) => {
      const c = (await call(io, cmd, 'GET', `${objectPath(org, t, id)}/status`, undefined, true)) as Buffer
      io.stdout(c.toString('utf8') + '\n')
    })
  objects
    .command('destinations <org> <type> <id>')
    .description('delivery status per destination (bytes received during a transfer)')
    .option('--json', 'JSON output')
    .action(async (org: string, t: string, id: string, o: { json?: boolean }, cmd: Command) => {
      const list = (await call(io, cmd, 'GET', `${objectPath(org, t, id)}/destinations`)) as Json
      print(
        io,
        o.json,
        list.map((d) => ({ ...d, destination: `${String(d.destinationType)}/${String(d.destinationID)}` })),
        ['destination', 'status', 'instanceID', 'bytesReceived', 'detail', 'message']
      )
    })
}

function addUserCommands (program: Command, io: Io): void {
  const users = program.command('users').description('app keys: add, list, disable, enable, rotate, remove')
  users
    .command('add <org> <appKey>')
    .description('create an app key; prints its secret once')
    .addOption(new Option('--role <role>', 'role').choices(['user', 'orgAdmin']).default('user'))
    .option('--json', 'JSON output')
    .action(async (org: string, key: string, o: { role: string; json?: boolean }, cmd: Command) => {
      const r = (await call(io, cmd, 'POST', `/api/v1/users/${org}`, {
        appKey: key,
        role: o.role
      })) as Record<string, unknown>
      if (o.json === true) io.stdout(JSON.stringify(r, null, 2) + '\n')
      else io.stdout(`appKey ${String(r.appKey)}\nsecret ${String(r.secret)}\n`)
    })
  users
    .command('list <org>')
    .description('app keys and node identities of an org')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      print(io, o.json, (await call(io, cmd, 'GET', `/api/v1/users/${org}`)) as Json, [
        'appKey',
        'role',
        'disabled',
        'created'
      ])
    })
  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false]
  ] as const) {
    users
      .command(`${name} <org> <appKey>`)
      .description(`${name} an app key (takes effect at once)`)
      .action(async (org: string, key: string, _o, cmd: Command) => {
        await call(io, cmd, 'PUT', `/api/v1/users/${org}/${key}`, { disabled })
        io.stdout(`${name}d ${key}\n`)
      })
  }
  users
    .command('rotate <org> <appKey>')
    .description('new secret for an app key (the old one stops working at once)')
    .action(async (org: string, key: string, _o, cmd: Command) => {
      const r = (await call(io, cmd, 'POST', `/api/v1/users/${org}/${key}/rotate`)) as { secret: string }
      io.stdout(`appKey ${key}\nsecret ${r.secret}\n`)
    })
  users
    .command('remove <org> <appKey>')
    .description('remove an app key')
    .action(async (org: string, key: string, _o, cmd: Command) => {
      await call(io, cmd, 'DELETE', `/api/v1/users/${org}/${key}`)
      io.stdout(`removed ${key}\n`)
    })
  const keys = program.command('keys').description('object-signing keys of an org: list, rotate')
  keys
    .command('list <org>')
    .description('public keys, current first')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      print(io, o.json, (await call(io, cmd, 'GET', `/api/v1/keys/${org}`)) as Json, [
        'keyId',
        'current',
        'created',
        'publicKey'
      ])
    })
  keys
    .command('rotate <org>')
    .description('new signing key; nodes are told to trust it (signed by the old key)')
    .action(async (org: string, _o, cmd: Command) => {
      const r = (await call(io, cmd, 'POST', `/api/v1/keys/${org}/rotate`)) as { publicKey: string }
      io.stdout(`SigningKey ${r.publicKey}\n`)
    })
  program
    .command('cluster')
    .description('the CSS instances on this store')
    .command('status')
    .description('instances (alive or not), which holds the lease, edges connected to each')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const r = (await call(io, cmd, 'GET', '/api/v1/cluster')) as {
        self: string
        lease: { holder: string | null; version: number | null; expiresAt: string | null }
        instances: Array<{
          id: string
          alive: boolean
          leader: boolean
          connectedEdges: number | null
          rest: string
          seenAt: string
        }>
      }
      if (o.json === true) {
        io.stdout(JSON.stringify(r, null, 2) + '\n')
        return
      }
      io.stdout(`lease: ${r.lease.holder ?? 'nobody'} (term ${String(r.lease.version ?? '-')}); answered by ${r.self}\n`)
      const rows = r.instances.map((i) => ({
        id: i.id,
        state: i.alive ? 'alive' : 'gone',
        leader: i.leader && i.id === r.lease.holder ? 'yes' : '',
        edges: i.connectedEdges ?? '-',
        rest: i.rest,
        seen: i.seenAt
      }))
      print(io, false, rows, ['id', 'state', 'leader', 'edges', 'rest', 'seen'])
    })
  const alerts = program.command('alerts').description('operator alerts: list, test')
  alerts
    .command('list <org>')
    .description('alerts raised for an org, newest first')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      print(io, o.json, (await call(io, cmd, 'GET', `/api/v1/alerts/${org}`)) as Json, ['at', 'kind', 'target', 'summary'])
    })
  alerts
    .command('test <org>')
    .description('send a test alert through every configured channel and show how each went')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      const r = (await call(io, cmd, 'POST', `/api/v1/alerts/${org}/test`)) as {
        webhooks: Array<{ url: string; ok: boolean }>
        email?: { to: string[]; ok: boolean; error?: string }
      }
      if (o.json === true) {
        io.stdout(JSON.stringify(r, null, 2) + '\n')
        return
      }
      if (r.webhooks.length === 0 && r.email === undefined) io.stdout('no alert channel configured (AlertWebhooks, AlertEmailTo)\n')
      for (const w of r.webhooks) io.stdout(`webhook ${w.url}: ${w.ok ? 'delivered' : 'FAILED'}\n`)
      if (r.email !== undefined) {
        io.stdout(`e-mail to ${r.email.to.join(', ')}: ${r.email.ok ? 'sent' : `FAILED (${r.email.error ?? ''})`}\n`)
      }
    })
  program
    .command('audit <org>')
    .description('audit log of admin changes (who, what, when)')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      print(io, o.json, (await call(io, cmd, 'GET', `/api/v1/audit/${org}`)) as Json, [
        'at',
        'actor',
        'action',
        'target'
      ])
    })
}

function addAclCommands (program: Command, io: Io): void {
  const acl = program
    .command('acl')
    .description('access to object types and destination types: add, remove, list')
  const kind = new Option('--kind <kind>', 'objects or destinations')
    .choices(['objects', 'destinations'])
    .default('objects')
  const keyPath = (org: string, k: string, type: string): string =>
    `/api/v1/security/${k}/${org}${type === '*' ? '' : `/${type}`}`
  acl
    .command('add <org> <type> <username>')
    .description('give a user (or * for every user) access to a type (* for all types)')
    .addOption(kind)
    .addOption(
      new Option('--role <role>', 'for objects: reader or writer')
        .choices(['reader', 'writer'])
        .default('reader')
    )
    .option('--node', 'the username is a node')
    .action(
      async (
        org: string,
        type: string,
        username: string,
        o: { kind: string; role: string; node?: boolean },
        cmd: Command
      ) => {
        await call(io, cmd, 'PUT', keyPath(org, o.kind, type), {
          action: 'add',
          users: [
            {
              ACLUserType: o.node === true ? 'node' : 'user',
              Username: username,
              ACLRole: o.role === 'writer' ? 'aclWriter' : 'aclReader'
            }
          ]
        })
        io.stdout(
          `${username} may ${o.kind === 'objects' ? (o.role === 'writer' ? 'read and write' : 'read') : 'address'} ${o.kind} ${type}\n`
        )
      }
    )
  acl
    .command('remove <org> <type> <username>')
    .description("remove a user from a type's ACL")
    .addOption(kind)
    .option('--node', 'the username is a node')
    .action(
      async (
        org: string,
        type: string,
        username: string,
        o: { kind: string; node?: boolean },
        cmd: Command
      ) => {
        await call(io, cmd, 'PUT', keyPath(org, o.kind, type), {
          action: 'remove',
          users: [{ ACLUserType: o.node === true ? 'node' : 'user', Username: username }]
        })
        io.stdout(`removed ${username} from ${o.kind} ${type}\n`)
      }
    )
  acl
    .command('list <org> [type]')
    .description('types with ACLs (objects and destinations), or the users of one type')
    .addOption(new Option('--kind <kind>', 'only objects or only destinations').choices(['objects', 'destinations']))
    .option('--json', 'JSON output')
    .action(
      async (org: string, type: string | undefined, o: { kind?: string; json?: boolean }, cmd: Command) => {
        const rows: Json = []
        for (const k of o.kind === undefined ? ['objects', 'destinations'] : [o.kind]) {
          try {
            const query = type === undefined ? '?all_keys=true' : `?key=${encodeURIComponent(type)}`
            const r = (await call(io, cmd, 'GET', `/api/v1/security/${k}/${org}${query}`)) as unknown[]
            for (const x of r) {
              if (typeof x === 'string') {
                rows.push({ kind: k, type: x })
                continue
              }
              const e = x as Record<string, unknown>
              // A destination ACL lets a user address that destination type: it has no reader/writer role.
              const role = k === 'destinations' ? 'address' : e.ACLRole === 'aclWriter' ? 'writer' : 'reader'
              rows.push({ kind: k, ...e, role })
            }
          } catch (err) {
            if ((err as CliError).exitCode !== EXIT.NOT_FOUND) throw err
          }
        }
        print(io, o.json, rows, type === undefined ? ['kind', 'type'] : ['kind', 'ACLUserType', 'Username', 'role'])
      }
    )
}
