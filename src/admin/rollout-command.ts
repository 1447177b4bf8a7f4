/**
 * `syncctl rollout` (create with preview, list, status, pause, resume, abort, approve),
 * `syncctl windows` (maintenance windows) and `syncctl drift` (edges running something other
 * than what they should; `--correct EDGE` resends).
 */
import { readFile } from 'node:fs/promises'
import { Option, type Command } from 'commander'
import { call, CliError, EXIT, print, type Io } from './client.js'

interface CreateOpts {
  emsLayer?: string
  emsBulk?: string
  object?: string
  destType?: string
  file?: string
  site?: string
  selector?: string
  waves?: string
  counts?: string
  exponential?: string
  success?: string
  errors?: string
  onError?: string
  approval?: boolean
  deadline?: string
  minWave?: string
  windows?: string
  id?: string
  preview?: boolean
  json?: boolean
}

const pairs = (s: string | undefined): Record<string, string> | undefined =>
  s === undefined
    ? undefined
    : Object.fromEntries(s.split(',').map((p) => p.split('=').map((x) => x.trim()) as [string, string]))

function numbers (s: string, what: string): number[] {
  const v = s.split(',').map(Number)
  if (v.some((x) => !Number.isFinite(x) || x <= 0)) { throw new CliError(`${what}: give positive numbers, comma separated`, EXIT.USAGE) }
  return v
}

async function change (o: CreateOpts): Promise<{ kind: string; change: Record<string, unknown> }> {
  const given = [o.emsLayer, o.emsBulk, o.object].filter((x) => x !== undefined).length
  if (given !== 1) {
    throw new CliError(
      'Give one of --ems-layer LAYER --file F, --ems-bulk PATH=VALUE, --object TYPE/ID --file F',
      EXIT.USAGE
    )
  }
  const file = async (): Promise<Buffer> => {
    if (o.file === undefined) throw new CliError('--file is required', EXIT.USAGE)
    try {
      return await readFile(o.file)
    } catch (err) {
      throw new CliError(`Cannot read ${o.file}: ${(err as Error).message}`, EXIT.USAGE)
    }
  }
  if (o.emsLayer !== undefined) {
    let doc: unknown
    try {
      doc = JSON.parse((await file()).toString('utf8'))
    } catch (err) {
      throw new CliError(`${o.file ?? ''}: ${(err as Error).message}`, EXIT.USAGE)
    }
    return { kind: 'ems', change: { layer: o.emsLayer, doc } }
  }
  if (o.emsBulk !== undefined) {
    const i = o.emsBulk.indexOf('=')
    if (i <= 0) throw new CliError('--ems-bulk PATH=VALUE (VALUE is JSON)', EXIT.USAGE)
    let value: unknown
    try {
      value = JSON.parse(o.emsBulk.slice(i + 1))
    } catch {
      value = o.emsBulk.slice(i + 1)
    }
    const selector = pairs(o.selector)
    return {
      kind: 'ems',
      change: {
        bulk: {
          path: o.emsBulk.slice(0, i),
          value,
          ...(o.site === undefined ? {} : { site: o.site }),
          ...(selector === undefined ? {} : { selector })
        }
      }
    }
  }
  const [objectType = '', objectID = ''] = (o.object ?? '').split('/')
  if (o.destType === undefined) throw new CliError('--object needs --dest-type', EXIT.USAGE)
  const selector = pairs(o.selector)
  return {
    kind: 'object',
    change: {
      objectType,
      objectID,
      destinationType: o.destType,
      data: (await file()).toString('base64'),
      ...(o.site === undefined ? {} : { site: o.site }),
      ...(selector === undefined ? {} : { selector })
    }
  }
}

export function addRolloutCommand (program: Command, io: Io): void {
  const rollout = program
    .command('rollout')
    .description('staged rollouts: create, list, status, pause, resume, abort, approve')
  rollout
    .command('create <org>')
    .description(
      'send an EMS change or an object in waves (--preview: show the waves and per-edge diffs only)'
    )
    .option('--ems-layer <layer>', 'an EMS layer (org, site:ID, edge:ID) replaced by --file')
    .option('--ems-bulk <path=value>', 'an EMS bulk change (with --site or --selector)')
    .option('--object <type/id>', 'an object instance (data from --file, for --dest-type nodes)')
    .option('--dest-type <type>', 'destination type for --object')
    .option('--file <file>', 'the layer (JSON) or the object data')
    .option('--site <id>', 'only edges of this site')
    .option('--selector <k=v,...>', 'only edges with these properties')
    .option('--waves <percents>', 'waves by share, e.g. 10,40,50 (default 100)')
    .option('--counts <counts>', 'waves by number of edges, e.g. 2,8,10')
    .option('--exponential <start:factor>', 'waves of start, start*factor, ... edges')
    .option('--success <share>', 'share of a wave that must consume before the next (0-1, default 1)')
    .option('--errors <share>', 'share of a wave failed or timed out that stops the rollout (0-1, default 0)')
    .addOption(new Option('--on-error <action>', 'what the error threshold does').choices(['pause', 'abort']))
    .option('--approval', 'wait for `rollout approve` before each wave after the first')
    .option('--deadline <seconds>', 'a delivery not consumed within this is timed out (default 3600)')
    .option('--min-wave <seconds>', 'a wave starts no sooner than this after the previous one (exponential: 60)')
    .addOption(
      new Option(
        '--windows <mode>',
        'maintenance windows: hold (edge applies inside), wait (send inside), ignore'
      ).choices(['hold', 'wait', 'ignore'])
    )
    .option('--id <id>', 'rollout id (default: generated)')
    .option('--preview', 'show what it would do; send nothing')
    .option('--json', 'JSON output')
    .action(async (org: string, o: CreateOpts, cmd: Command) => {
      const c = await change(o)
      const body: Record<string, unknown> = { ...c }
      if (o.waves !== undefined) body.waves = numbers(o.waves, '--waves').map((percent) => ({ percent }))
      if (o.counts !== undefined) body.waves = numbers(o.counts, '--counts').map((count) => ({ count }))
      if (o.exponential !== undefined) {
        const [start = 0, factor = 0] = numbers(o.exponential.replace(':', ','), '--exponential')
        body.exponential = { start, factor }
      }
      if (o.success !== undefined) body.successThreshold = Number(o.success)
      if (o.errors !== undefined) body.errorThreshold = Number(o.errors)
      if (o.onError !== undefined) body.onError = o.onError
      if (o.approval === true) body.approval = true
      if (o.deadline !== undefined) body.deadlineSeconds = Number(o.deadline)
      if (o.minWave !== undefined) body.minWaveSeconds = Number(o.minWave)
      if (o.windows !== undefined) body.windows = o.windows
      if (o.id !== undefined) body.id = o.id
      const r = (await call(
        io,
        cmd,
        'POST',
        `/api/v1/rollouts/${org}${o.preview === true ? '?preview=true' : ''}`,
        body
      )) as Record<string, unknown>
      if (o.json === true) {
        io.stdout(JSON.stringify(r, null, 2) + '\n')
        return
      }
      if (o.preview === true) {
        const waves = r.waves as Array<Array<{ edge: string; changes?: unknown[] }>>
        print(
          io,
          false,
          waves.flatMap((w, i) =>
            w.map((e) => ({ wave: i + 1, edge: e.edge, changes: e.changes?.length ?? '' }))
          ),
          ['wave', 'edge', 'changes']
        )
        for (const s of r.skipped as Array<{ edge: string; why: string }>) { io.stdout(`skipped ${s.edge}: ${s.why}\n`) }
        return
      }
      io.stdout(
        `rollout ${String(r.id)} ${String(r.status)}: ${(r.waves as Array<{ size: number }>).map((w) => w.size).join(' + ')} edges\n`
      )
    })
  rollout
    .command('list <org>')
    .description('rollouts with their status and wave')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      const rows = (await call(io, cmd, 'GET', `/api/v1/rollouts/${org}`)) as Array<Record<string, unknown>>
      print(
        io,
        o.json,
        rows.map((r) => ({
          ...r,
          progress: (r.waves as Array<{ consumed: number; size: number }>)
            .map((w) => `${w.consumed}/${w.size}`)
            .join(' ')
        })),
        ['id', 'kind', 'status', 'wave', 'progress', 'reason']
      )
    })
  rollout
    .command('status <org> <id>')
    .description('waves, each edge with its outcome, and why it is paused or aborted')
    .option('--json', 'JSON output')
    .action(async (org: string, id: string, o: { json?: boolean }, cmd: Command) => {
      const r = (await call(io, cmd, 'GET', `/api/v1/rollouts/${org}/${id}`)) as Record<string, unknown>
      if (o.json === true) {
        io.stdout(JSON.stringify(r, null, 2) + '\n')
        return
      }
      io.stdout(
        `${String(r.id)}: ${String(r.status)}${r.reason === undefined ? '' : ` (${String(r.reason)})`}\n`
      )
      print(io, false, r.waves as Array<Record<string, unknown>>, [
        'wave',
        'size',
        'consumed',
        'applying',
        'error',
        'timedOut',
        'waiting',
        'reverted',
        'state'
      ])
      print(io, false, r.edges as Array<Record<string, unknown>>, [
        'edge',
        'wave',
        'outcome',
        'from',
        'to',
        'revertedTo',
        'message'
      ])
    })
  for (const action of ['pause', 'resume', 'abort', 'approve'] as const) {
    rollout
      .command(`${action} <org> <id>`)
      .description(
        action === 'abort'
          ? 'stop and return every edge changed to what it had'
          : action === 'approve'
            ? 'let the next wave start'
            : `${action} the rollout`
      )
      .action(async (org: string, id: string, _o, cmd: Command) => {
        await call(io, cmd, 'POST', `/api/v1/rollouts/${org}/${id}/${action}`)
        io.stdout(`${action} ${id}: accepted (the CSS acts on it within a second)\n`)
      })
  }

  const windows = program.command('windows').description('maintenance windows: set, list, remove')
  windows
    .command('set <org> <name> <cron> <durationSeconds>')
    .description(
      'a window for a site or selector: cron (5 fields, or 6 with seconds first), its length, a time zone'
    )
    .option('--site <id>', 'for the edges of this site')
    .option('--selector <k=v,...>', 'for the edges with these properties')
    .option('--tz <zone>', 'time zone (default UTC)')
    .action(
      async (
        org: string,
        name: string,
        cron: string,
        duration: string,
        o: { site?: string; selector?: string; tz?: string },
        cmd: Command
      ) => {
        const selector = pairs(o.selector)
        const w = (await call(io, cmd, 'PUT', `/api/v1/windows/${org}/${name}`, {
          cron,
          durationSeconds: Number(duration),
          timeZone: o.tz ?? 'UTC',
          ...(o.site === undefined ? {} : { site: o.site }),
          ...(selector === undefined ? {} : { selector })
        })) as Record<string, unknown>
        io.stdout(
          `${name}: ${w.open === true ? `open until ${String(w.openUntil)}` : `opens ${String(w.nextOpen ?? 'never within 8 days')}`}\n`
        )
      }
    )
  windows
    .command('list <org>')
    .description('windows, whether each is open and when it opens next')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      print(
        io,
        o.json,
        (await call(io, cmd, 'GET', `/api/v1/windows/${org}`)) as Array<Record<string, unknown>>,
        ['name', 'cron', 'durationSeconds', 'timeZone', 'site', 'open', 'nextOpen']
      )
    })
  windows
    .command('remove <org> <name>')
    .description('remove a window')
    .action(async (org: string, name: string, _o, cmd: Command) => {
      await call(io, cmd, 'DELETE', `/api/v1/windows/${org}/${name}`)
      io.stdout(`removed ${name}\n`)
    })

  program
    .command('drift <org>')
    .description(
      'EMS edges running something other than what they should; --correct EDGE resends its newest config'
    )
    .option('--correct <edge>', 'resend this edge its newest config (a new version)')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { correct?: string; json?: boolean }, cmd: Command) => {
      if (o.correct !== undefined) {
        const r = (await call(io, cmd, 'POST', `/api/v1/ems/${org}/edges/${o.correct}/drift/correct`)) as {
          version: number
        }
        io.stdout(`${o.correct}: v${r.version} sent\n`)
        return
      }
      const rows = (await call(io, cmd, 'GET', `/api/v1/ems/${org}/drift`)) as Array<Record<string, unknown>>
      print(
        io,
        o.json,
        rows.map((r) => ({
          ...r,
          kind: (r.drift as { kind: string }).kind,
          detail: (r.drift as { detail: string }).detail
        })),
        ['edge', 'site', 'latest', 'running', 'kind', 'detail']
      )
    })
}
