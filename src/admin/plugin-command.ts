/**
 * `syncctl plugins`: an edge's plugins and their lifecycle. Through the CSS for any edge of an org
 * (`list|start|stop|pause|resume <org> <destType> <destId> [plugin]`: a command to that edge,
 * authorized and audited by the CSS), or on the edge itself with `--local` and the ESS's URL and
 * admin key (`syncctl --url http://127.0.0.1:8081 --key ... plugins pause --local ems`).
 */
import type { Command } from 'commander'
import { call, CliError, EXIT, print, type Io } from './client.js'

const ACTIONS = ['start', 'stop', 'pause', 'resume'] as const

type Rows = Array<Record<string, unknown>>

function rows (plugins: Record<string, Record<string, unknown>>): Rows {
  return Object.entries(plugins).map(([name, s]) => ({
    plugin: name,
    state: s.state ?? 'running',
    waiting: s.waiting ?? 0,
    activeVersion: s.activeVersion,
    lastError: s.lastError
  }))
}

/** `[org, destType, destId, plugin]` through the CSS, or `[plugin]` with --local. */
function target (args: string[], local: boolean, needPlugin: boolean): { node?: string, plugin?: string } {
  const want = (local ? 0 : 3) + (needPlugin ? 1 : 0)
  if (args.length !== want) {
    throw new CliError(
      local
        ? `With --local give ${needPlugin ? 'the plugin name only' : 'no arguments'}`
        : `Give <org> <destType> <destId>${needPlugin ? ' <plugin>' : ''} (or --local on the ESS)`,
      EXIT.USAGE
    )
  }
  return {
    ...(local ? {} : { node: args.slice(0, 3).map(encodeURIComponent).join('/') }),
    ...(needPlugin ? { plugin: encodeURIComponent(args[want - 1] ?? '') } : {})
  }
}

export function addPluginCommand (program: Command, io: Io): void {
  const plugins = program
    .command('plugins')
    .description("an edge's plugins: list, start, stop, pause, resume (through the CSS, or --local on the ESS)")
  plugins
    .command('list [args...]')
    .description('plugins of <org> <destType> <destId> with their state (--local: of this ESS)')
    .option('--local', '--url is the ESS itself')
    .option('--json', 'JSON output')
    .action(async (args: string[], o: { local?: boolean, json?: boolean }, cmd: Command) => {
      const t = target(args, o.local === true, false)
      const got = o.local === true
        ? (await call(io, cmd, 'GET', '/api/v1/plugins')) as Record<string, Record<string, unknown>>
        : ((await call(io, cmd, 'GET', `/api/v1/fleet/${t.node ?? ''}`)) as { plugins: Record<string, Record<string, unknown>> }).plugins
      print(io, o.json, rows(got), ['plugin', 'state', 'waiting', 'activeVersion', 'lastError'])
    })
  for (const action of ACTIONS) {
    plugins
      .command(`${action} [args...]`)
      .description(`${action} a plugin: <org> <destType> <destId> <plugin> (--local: <plugin> on this ESS)`)
      .option('--local', '--url is the ESS itself')
      .action(async (args: string[], o: { local?: boolean }, cmd: Command) => {
        const t = target(args, o.local === true, true)
        if (o.local === true) {
          const r = (await call(io, cmd, 'POST', `/api/v1/plugins/${t.plugin ?? ''}/${action}`)) as { state: string }
          io.result?.(r)
          io.stdout(`${decodeURIComponent(t.plugin ?? '')}: ${r.state}\n`)
          return
        }
        const r = (await call(io, cmd, 'POST', `/api/v1/nodes/${t.node ?? ''}/plugins/${t.plugin ?? ''}/${action}`)) as { online: boolean }
        io.result?.(r)
        io.stdout(`${action} sent to ${args.slice(0, 3).join('/')} (${r.online ? 'online' : 'offline: it gets it if its broker session kept it'}); ` +
          'its next heartbeat shows the state: syncctl plugins list\n')
      })
  }
}
