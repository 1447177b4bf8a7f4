/** `syncctl ems`: the EMS configuration schema, local validation, layers, effective configs, bulk changes. */
import { readFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { EMS_CONFIG_SCHEMA } from '../ems/common/schema.js'
import { validateEmsConfig } from '../ems/common/validate.js'
import { mergeLayers, type Json } from '../ems/cloud/layers.js'
import { call, CliError, EXIT, print, type Io } from './client.js'

async function readJson (file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new CliError(`Cannot read JSON from ${file}: ${(err as Error).message}`, EXIT.USAGE)
  }
}

export function addEmsCommand (program: Command, io: Io): void {
  const ems = program
    .command('ems')
    .description(
      'EMS configuration: schema, validate, layers, effective configs, bulk changes, rollback, status'
    )
  ems
    .command('schema')
    .description('print the JSON Schema of an EMS configuration')
    .action(() => {
      io.stdout(JSON.stringify(EMS_CONFIG_SCHEMA, null, 2) + '\n')
    })
  ems
    .command('validate <files...>')
    .description(
      'check an EMS configuration without a CSS: one complete file, or layer files merged in order ' +
        '(org, site, edge) as the CSS merges them'
    )
    .action(async (files: string[]) => {
      const docs = await Promise.all(files.map(async (f) => await readJson(f)))
      const config = docs.length === 1
        ? docs[0]
        : mergeLayers(docs.map((doc, i) => ({ name: files[i] ?? String(i), doc: doc as Record<string, Json> }))).config
      const problems = validateEmsConfig(config)
      io.result?.({ valid: problems.length === 0, problems })
      if (problems.length === 0) {
        io.stdout(docs.length === 1 ? 'valid\n' : `valid (${docs.length} layers merged)\n`)
        return
      }
      for (const p of problems) io.stdout(`${p.path}  ${p.rule}  ${p.message}\n`)
      throw new CliError(`${problems.length} problem(s)`, EXIT.REJECTED, undefined, {
        code: 'SYNC_ERR_VALIDATION',
        details: problems
      })
    })
  ems
    .command('layer-get <org> <layer>')
    .description('a layer document (layer: org, site:<id> or edge:<id>)')
    .action(async (org: string, layer: string, _o, cmd: Command) => {
      io.stdout(
        JSON.stringify(await call(io, cmd, 'GET', `/api/v1/ems/${org}/layers/${layer}`), null, 2) + '\n'
      )
    })
  ems
    .command('layer-set <org> <layer> <file>')
    .description('replace a layer with a JSON file; affected edges get their new effective config')
    .option('--preview', 'show what the change does to each edge; publish nothing')
    .option('--json', 'JSON output')
    .action(async (org: string, layer: string, file: string, o: LayerOpts, cmd: Command) => {
      const q = o.preview === true ? '?preview=true' : ''
      const r = await call(io, cmd, 'PUT', `/api/v1/ems/${org}/layers/${layer}${q}`, await readJson(file))
      printLayerChange(io, o, r as LayerAnswer)
    })
  ems
    .command('layer-patch <org> <layer> <file>')
    .description(
      'merge a partial JSON document into a layer (lists by item id; {"id":..,"_remove":true} drops one)'
    )
    .option('--preview', 'show what the change does to each edge; publish nothing')
    .option('--json', 'JSON output')
    .action(async (org: string, layer: string, file: string, o: LayerOpts, cmd: Command) => {
      const q = o.preview === true ? '?preview=true' : ''
      const r = await call(io, cmd, 'PATCH', `/api/v1/ems/${org}/layers/${layer}${q}`, await readJson(file))
      printLayerChange(io, o, r as LayerAnswer)
    })
  ems
    .command('changes <org>')
    .description("EMS audit trail: changes (who, when, diff, edges) and each edge's outcome")
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      const list = (await call(io, cmd, 'GET', `/api/v1/ems/${org}/changes`)) as Array<
        Record<string, unknown>
      >
      print(
        io,
        o.json,
        // A table cuts long details to stay readable; JSON keeps them whole.
        o.json === true ? list : list.map((e) => ({ ...e, detail: JSON.stringify(e.detail ?? {}).slice(0, 120) })),
        ['at', 'actor', 'action', 'target', 'detail']
      )
    })
  ems
    .command('effective <org> <edge>')
    .description("an edge's effective config; --provenance shows which layer set each value")
    .option('--provenance', 'the layer of each value')
    .action(async (org: string, edge: string, o: { provenance?: boolean }, cmd: Command) => {
      const r = (await call(io, cmd, 'GET', `/api/v1/ems/${org}/edges/${edge}/effective`)) as {
        config: unknown
        provenance: Record<string, string>
      }
      if (o.provenance === true) {
        print(
          io,
          false,
          Object.entries(r.provenance).map(([path, layer]) => ({ path, layer })),
          ['path', 'layer']
        )
      } else io.stdout(JSON.stringify(r.config, null, 2) + '\n')
    })
  ems
    .command('history <org> <edge>')
    .description("versions of an edge's effective config")
    .option('--json', 'JSON output')
    .action(async (org: string, edge: string, o: { json?: boolean }, cmd: Command) => {
      print(
        io,
        o.json,
        (await call(io, cmd, 'GET', `/api/v1/ems/${org}/edges/${edge}/history`)) as Array<
          Record<string, unknown>
        >,
        ['version', 'instanceID', 'lastUpdate']
      )
    })
  ems
    .command('rollback <org> <edge> <version>')
    .description('publish an earlier effective config again, as a new version')
    .action(async (org: string, edge: string, version: string, _o, cmd: Command) => {
      const r = (await call(io, cmd, 'POST', `/api/v1/ems/${org}/edges/${edge}/rollback`, {
        version: Number(version)
      })) as { version: number }
      io.stdout(`${edge} now at version ${r.version} (content of version ${version}), pinned there: ` +
        `layer changes wait until 'syncctl ems release ${org} ${edge}'\n`)
    })
  ems
    .command('release <org> <edge>')
    .description('end a rollback pin: the edge follows its layers again and gets its effective config')
    .action(async (org: string, edge: string, _o, cmd: Command) => {
      const r = (await call(io, cmd, 'POST', `/api/v1/ems/${org}/edges/${edge}/release`)) as {
        version?: number
        changes: unknown[]
      }
      io.stdout(r.version === undefined
        ? `${edge} released; its layers give the config it runs (nothing published)\n`
        : `${edge} released and at version ${r.version} (${r.changes.length} change(s))\n`)
    })
  ems
    .command('bulk <org> <path> <value>')
    .description(
      'set one value (keyed path, e.g. /scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts) for a site or a selector'
    )
    .option('--site <id>', 'every edge of this site (sets the site layer)')
    .option('--selector <k=v>', 'every edge whose properties match (sets their edge layers)')
    .option('--apply', 'publish (without it: preview the per-edge diff)')
    .action(
      async (
        org: string,
        path: string,
        value: string,
        o: { site?: string; selector?: string; apply?: boolean },
        cmd: Command
      ) => {
        let v: unknown
        try {
          v = JSON.parse(value)
        } catch {
          v = value
        }
        const selector = o.selector === undefined ? undefined : Object.fromEntries([o.selector.split('=')])
        const r = (await call(io, cmd, 'POST', `/api/v1/ems/${org}/bulk`, {
          path,
          value: v,
          ...(o.site === undefined ? {} : { site: o.site }),
          ...(selector === undefined ? {} : { selector }),
          apply: o.apply === true
        })) as {
          edges: Array<{
            edge: string
            changes: Array<{ path: string; from?: unknown; to?: unknown }>
            version?: number
          }>
        }
        for (const e of r.edges) {
          io.stdout(`${e.edge}${e.version === undefined ? '' : ` -> version ${e.version}`}\n`)
          for (const c of e.changes) {
            io.stdout(`  ${c.path}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}\n`)
          }
        }
        if (o.apply !== true) io.stdout('(preview: nothing published; add --apply)\n')
      }
    )
  ems
    .command('status <org>')
    .description('per edge: latest version, version delivered/applied, freshness')
    .option('--json', 'JSON output')
    .action(async (org: string, o: { json?: boolean }, cmd: Command) => {
      print(
        io,
        o.json,
        (await call(io, cmd, 'GET', `/api/v1/ems/${org}/status`)) as Array<Record<string, unknown>>,
        ['edge', 'site', 'latest', 'status', 'deliveredVersion', 'behindSince', 'message']
      )
    })
}

interface LayerOpts { preview?: boolean, json?: boolean }
interface LayerOutcome {
  edge: string
  version?: number
  changes: unknown[]
  incomplete?: string[]
  problems?: unknown[]
  pinned?: { version: number }
}
interface LayerAnswer { published?: LayerOutcome[], preview?: LayerOutcome[], note?: string }

/** What a layer change did (or would do) to each edge, with why when it did nothing. */
function printLayerChange (io: Io, o: LayerOpts, r: LayerAnswer): void {
  if (o.json === true) {
    io.stdout(JSON.stringify(r, null, 2) + '\n')
    return
  }
  const rows = (r.published ?? r.preview ?? []).map((e) => ({
    edge: e.edge,
    version: e.version,
    changes: e.changes.length,
    note: e.pinned !== undefined
      ? `pinned at v${e.pinned.version} by a rollback: waits for 'syncctl ems release'`
      : e.incomplete !== undefined
        ? `incomplete: no ${e.incomplete.join(', ')} yet (nothing published)`
        : e.changes.length === 0 ? 'unchanged' : ''
  }))
  print(io, false, rows, ['edge', 'version', 'changes', 'note'])
  if (r.note !== undefined) io.stdout(`${r.note}\n`)
  if (r.preview !== undefined) io.stdout('(preview: nothing published)\n')
}
