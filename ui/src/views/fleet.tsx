/** Fleet: every edge, filtered and paged by the server, refreshed live by server-sent events. */
import { useState } from 'preact/hooks'
import { enc, get } from '../api.js'
import { Badge, ErrorBox, Loading, ago, useFleetEvents, useLoad } from '../ui.js'

export interface FleetNode {
  /** EMS edges: ok, behind, error, or drift (runs other than what it should). */
  type: string
  id: string
  site: string
  properties: Record<string, string>
  online: boolean
  lastHeartbeat?: string
  plugins: Record<string, Record<string, unknown>>
  state?: 'ok' | 'behind' | 'error' | 'drift'
  ems?: { latest?: number, status?: string, behindSince?: string, message?: string, pinned?: unknown, drift?: { kind: string, detail: string } }
}
interface FleetPage {
  total: number
  offset: number
  limit: number
  counts: { total: number, online: number, offline: number }
  sites: string[]
  nodes: FleetNode[]
}

const PAGE = 50

/** Alarms and errors an edge reports (its plugins' heartbeat), for one cell. */
export function troubles (n: FleetNode): string[] {
  const ems = n.plugins.ems ?? {}
  const alarms = Array.isArray(ems.activeAlarms) ? (ems.activeAlarms as string[]) : []
  const err = typeof ems.lastError === 'string' ? [ems.lastError] : []
  const held = ems.heldForWindow as { version?: number } | undefined
  return [
    ...alarms.map((a) => `alarm ${a}`),
    ...err,
    ...(n.state === 'error' && n.ems?.message !== undefined && n.ems.message !== '' ? [n.ems.message] : []),
    ...(n.ems?.drift === undefined ? [] : [`drift: ${n.ems.drift.detail}`]),
    ...(held === undefined ? [] : [`v${held.version ?? '?'} held for its maintenance window`])
  ]
}

export function Fleet ({ org }: { org: string }): preact.JSX.Element {
  const [site, setSite] = useState('')
  const [state, setState] = useState('')
  const [q, setQ] = useState('')
  const [offset, setOffset] = useState(0)
  const qs = new URLSearchParams({ offset: String(offset), limit: String(PAGE) })
  if (site !== '') qs.set('site', site)
  if (state !== '') qs.set('state', state)
  if (q !== '') qs.set('q', q)
  const { data, error, reload } = useLoad(async () => await get<FleetPage>(`/api/v1/fleet/${enc(org)}?${qs.toString()}`), [org, site, state, q, offset])
  const live = useFleetEvents(org, reload)
  const pages = data === undefined ? 0 : Math.ceil(data.total / PAGE)
  return (
    <section>
      <h2>Fleet <Badge kind={live ? 'ok' : 'muted'}>{live ? 'live' : 'not live'}</Badge></h2>
      {data !== undefined && (
        <p class='counts'>
          <span data-testid='count-total'>{data.counts.total}</span> edges,{' '}
          <span data-testid='count-online'>{data.counts.online}</span> online, {data.counts.offline} offline
        </p>
      )}
      <div class='filters'>
        <label>
          Site
          <select value={site} onChange={(e) => { setSite(e.currentTarget.value); setOffset(0) }}>
            <option value=''>all</option>
            {(data?.sites ?? []).map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>
          State
          <select name='state' value={state} onChange={(e) => { setState(e.currentTarget.value); setOffset(0) }}>
            <option value=''>all</option>
            {['online', 'offline', 'ok', 'behind', 'error', 'drift'].map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>Search <input
          type='search' placeholder='id or property' value={q}
          onInput={(e) => { setQ(e.currentTarget.value); setOffset(0) }}
                      />
        </label>
      </div>
      <ErrorBox error={error} />
      {data === undefined
        ? <Loading what='the fleet' />
        : (
          <table class='fleet'>
            <thead>
              <tr><th>Edge</th><th>Site</th><th>Presence</th><th>Config in force / newest</th><th>State</th>
                <th>Behind since</th><th>Last heartbeat</th><th>Alarms and errors</th>
              </tr>
            </thead>
            <tbody>
              {data.nodes.map((n) => {
                const running = n.plugins.ems?.activeVersion as number | undefined
                return (
                  <tr key={`${n.type}/${n.id}`} data-edge={n.id}>
                    <td><a href={`#/edge/${enc(n.type)}/${enc(n.id)}`}>{n.id}</a> <span class='muted'>{n.type}</span></td>
                    <td>{n.site}</td>
                    <td><Badge kind={n.online ? 'ok' : 'bad'}>{n.online ? 'online' : 'offline'}</Badge></td>
                    <td class='version'>{n.ems === undefined ? '-' : `v${running ?? '?'} / v${n.ems.latest ?? '-'}`}</td>
                    <td>{n.state === undefined ? '-' : <Badge kind={n.state === 'ok' ? 'ok' : n.state === 'error' ? 'bad' : 'warn'}>{n.state}</Badge>}</td>
                    <td>{n.ems?.behindSince === undefined ? '-' : ago(n.ems.behindSince)}</td>
                    <td>{ago(n.lastHeartbeat)}</td>
                    <td class='troubles'>{troubles(n).join('; ')}</td>
                  </tr>
                )
              })}
            </tbody>
          </table>
          )}
      {pages > 1 && (
        <div class='pager'>
          <button disabled={offset === 0} onClick={() => { setOffset(Math.max(0, offset - PAGE)) }}>Previous</button>
          <span>page {Math.floor(offset / PAGE) + 1} of {pages}</span>
          <button disabled={offset + PAGE >= (data?.total ?? 0)} onClick={() => { setOffset(offset + PAGE) }}>Next</button>
        </div>
      )}
    </section>
  )
}
