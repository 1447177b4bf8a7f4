/** syncctl: the admin CLI over the CSS REST API. The only `commander` import. */
import { readFile, writeFile, appendFile } from 'node:fs/promises'
import { Command, Option } from 'commander'
import { configExampleText, configJsonSchema } from '../common/config/schema.js'
import { mosquittoAclText, mosquittoPasswordLine } from '../security/index.js'
import { addCertsCommand } from './certs-command.js'
import { addEmsCommand } from './ems-command.js'
import { addSimCommand } from './sim-command.js'
import { call, CliError, EXIT, print, type Io } from './client.js'

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

export function createProgram (io: Io): Command {
  const program = new Command('syncctl')
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
  addSimCommand(program, io)
  return program
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
        )) as { appKey: string; secret: string; signingKey?: string }
        if (o.mosquittoPasswd !== undefined) {
          await appendFile(o.mosquittoPasswd, mosquittoPasswordLine(r.appKey, r.secret) + '\n', {
            mode: 0o600
          })
        }
        io.stdout(
          `NodeType ESS\nOrgID ${org}\nDestinationType ${t}\nDestinationID ${id}\nNodeSecret ${r.secret}\n${r.signingKey === undefined ? '' : `SigningKey ${r.signingKey}\n`}`
        )
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
        await call(io, cmd, 'PUT', objectPath(org, t, id), { meta })
        if (data !== undefined) await call(io, cmd, 'PUT', `${objectPath(org, t, id)}/data`, data)
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
    .description('types with ACLs, or the users of one type')
    .addOption(kind)
    .option('--json', 'JSON output')
    .action(
      async (org: string, type: string | undefined, o: { kind: string; json?: boolean }, cmd: Command) => {
        let rows: Json
        try {
          const query = type === undefined ? '?all_keys=true' : `?key=${encodeURIComponent(type)}`
          const r = (await call(io, cmd, 'GET', `/api/v1/security/${o.kind}/${org}${query}`)) as unknown[]
          rows = r.map((x) => (typeof x === 'string' ? { type: x } : (x as Record<string, unknown>)))
        } catch (err) {
          if ((err as CliError).exitCode !== EXIT.NOT_FOUND) throw err
          rows = []
        }
        print(io, o.json, rows, type === undefined ? ['type'] : ['ACLUserType', 'Username', 'ACLRole'])
      }
    )
}
