/**
 * One edge: presence and properties, the EMS runtime's readings and alarms, its plugins (with
 * lifecycle commands), the effective config with the layer behind each value, the version
 * history with diffs, rollback (confirmed on its diff), and the objects it holds.
 */
import { useState } from 'preact/hooks'
import { call, enc, get, getOr } from '../api.js'
import type { Change } from '../ui.js'
import { Badge, Confirm, DiffTable, ErrorBox, Kv, Loading, ago, useFleetEvents, useLoad, watts } from '../ui.js'
import { troubles, type FleetNode } from './fleet.js'

interface Version { version: number, instanceID: number, lastUpdate?: string }
interface Held { objectType: string, objectID: string, status: string, instanceID: number, detail: string, message: string }

export function Edge ({ org, type, id, admin }: { org: string, type: string, id: string, admin: boolean }): preact.JSX.Element {
  const base = `/api/v1/fleet/${enc(org)}/${enc(type)}/${enc(id)}`
  const node = useLoad(async () => await get<FleetNode>(base), [base])
  useFleetEvents(org, node.reload, 5000)
  const n = node.data
  return (
    <section>
      <h2>Edge {id} <span class='muted'>{type}</span></h2>
      <ErrorBox error={node.error} />
      {n === undefined
        ? <Loading what='the edge' />
        : (
          <>
            <div class='cards'>
              <div class='card'>
                <h3>Node</h3>
                <Kv rows={[
                  ['Presence', <Badge key='p' kind={n.online ? 'ok' : 'bad'}>{n.online ? 'online' : 'offline'}</Badge>],
                  ['Site', n.site || '-'],
                  ['Last heartbeat', ago(n.lastHeartbeat)],
                  ['Properties', Object.entries(n.properties).map(([k, v]) => `${k}=${v}`).join(', ') || '-'],
                  ['Alarms and errors', troubles(n).join('; ') || 'none']
                ]}
                />
              </div>
              <Readings n={n} />
            </div>
            <Plugins org={org} n={n} admin={admin} reload={node.reload} />
            {n.ems !== undefined && <EmsConfig org={org} id={id} admin={admin} n={n} reload={node.reload} />}
            <HeldObjects org={org} type={type} id={id} />
          </>
          )}
    </section>
  )
}

function Readings ({ n }: { n: FleetNode }): preact.JSX.Element {
  const ems = n.plugins.ems
  const r = (ems?.readings ?? {}) as { gridW?: number, pvW?: number, batteryW?: number, soc?: number }
  const setpoints = (ems?.setpoints ?? {}) as Record<string, number>
  return (
    <div class='card' data-testid='readings'>
      <h3>Runtime</h3>
      {ems === undefined
        ? <p class='muted'>No EMS report yet</p>
        : (
          <Kv rows={[
            ['Config in force', <span key='v' data-testid='active-version'>v{String(ems.activeVersion ?? '-')}</span>],
            ['Grid', watts(r.gridW)],
            ['PV', watts(r.pvW)],
            ['Battery', watts(r.batteryW)],
            ['State of charge', r.soc === undefined ? '-' : `${r.soc} %`],
            ['Battery setpoints', <span key='s' data-testid='setpoints'>{Object.entries(setpoints).map(([k, v]) => `${k} ${watts(v)}`).join(', ') || '-'}</span>],
            ['Last apply', lastApply(ems.lastApply)]
          ]}
          />
          )}
    </div>
  )
}

function lastApply (a: unknown): string {
  if (typeof a !== 'object' || a === null) return '-'
  const x = a as { version?: number, at?: string, outcome?: string, reason?: string }
  return `v${x.version ?? '?'} ${x.outcome ?? ''} ${ago(x.at)}${x.reason === undefined ? '' : `: ${x.reason}`}`
}

function Plugins ({ org, n, admin, reload }: { org: string, n: FleetNode, admin: boolean, reload: () => void }): preact.JSX.Element {
  const [error, setError] = useState<unknown>()
  const [sent, setSent] = useState('')
  const act = async (name: string, action: string): Promise<void> => {
    setError(undefined)
    try {
      await call('POST', `/api/v1/nodes/${enc(org)}/${enc(n.type)}/${enc(n.id)}/plugins/${enc(name)}/${action}`)
      setSent(`${action} sent to ${name}; the edge's next heartbeat shows its state`)
      setTimeout(reload, 1500)
    } catch (err) { setError(err) }
  }
  const names = Object.keys(n.plugins)
  return (
    <div class='card'>
      <h3>Plugins</h3>
      <ErrorBox error={error} />
      {sent !== '' && <p class='note'>{sent}</p>}
      {names.length === 0
        ? <p class='muted'>No plugin reported</p>
        : (
          <table>
            <thead><tr><th>Plugin</th><th>State</th><th>Waiting</th>{admin && <th>Actions</th>}</tr></thead>
            <tbody>
              {names.map((p) => {
                const st = n.plugins[p] ?? {}
                return (
                  <tr key={p} data-plugin={p}>
                    <td>{p}</td>
                    <td class='plugin-state'>{String(st.state ?? 'running')}</td>
                    <td>{String(st.waiting ?? 0)}</td>
                    {admin && (
                      <td>{['pause', 'resume', 'stop', 'start'].map((a) => (
                        <button key={a} onClick={() => { void act(p, a) }}>{a}</button>
                      ))}
                      </td>
                    )}
                  </tr>
                )
              })}
            </tbody>
          </table>
          )}
    </div>
  )
}

function EmsConfig ({ org, id, admin, n, reload }: { org: string, id: string, admin: boolean, n: FleetNode, reload: () => void }): preact.JSX.Element {
  const e = `/api/v1/ems/${enc(org)}/edges/${enc(id)}`
  const eff = useLoad(async () => await get<{ config: unknown, provenance: Record<string, string> }>(`${e}/effective`), [e, n.ems?.latest])
  const hist = useLoad(async () => (await getOr<Version[]>(`${e}/history`)) ?? [], [e, n.ems?.latest])
  const [shown, setShown] = useState<{ version: number, changes: Change[] }>()
  const [ask, setAsk] = useState<{ version: number, changes: Change[] }>()
  const [error, setError] = useState<unknown>()
  // The server's diff (the EMS service's own rules: list items by id), not a copy of them here.
  const versionDiff = async (from: number | undefined, to: number): Promise<Change[]> =>
    await get<Change[]>(`${e}/versions/${to}/diff?from=${from ?? 0}`)
  const latest = hist.data?.[0]?.version
  const explain = async (i: number): Promise<void> => {
    const h = hist.data ?? []
    const v = h[i]
    if (v === undefined) return
    try { setShown({ version: v.version, changes: await versionDiff(h[i + 1]?.version, v.version) }) } catch (err) { setError(err) }
  }
  const askRollback = async (version: number): Promise<void> => {
    try { setAsk({ version, changes: await versionDiff(latest, version) }) } catch (err) { setError(err) }
  }
  const rollback = async (): Promise<void> => {
    if (ask === undefined) return
    setAsk(undefined)
    try {
      await call('POST', `${e}/rollback`, { version: ask.version })
      hist.reload(); reload()
    } catch (err) { setError(err) }
  }
  const release = async (): Promise<void> => {
    try { await call('POST', `${e}/release`); hist.reload(); reload() } catch (err) { setError(err) }
  }
  const prov = eff.data?.provenance ?? {}
  return (
    <>
      <div class='card'>
        <h3>Config versions</h3>
        <ErrorBox error={error ?? hist.error} />
        {n.ems?.pinned !== undefined && (
          <p class='note'>Pinned by a rollback: layer changes wait. {admin && <button onClick={() => { void release() }}>Release</button>}</p>
        )}
        <table class='history'>
          <thead><tr><th>Version</th><th>Published</th><th /></tr></thead>
          <tbody>
            {(hist.data ?? []).map((v, i) => (
              <tr key={v.version} data-version={v.version}>
                <td>v{v.version}{i === 0 ? ' (newest)' : ''}</td>
                <td>{ago(v.lastUpdate)}</td>
                <td>
                  <button onClick={() => { void explain(i) }}>Diff</button>
                  {admin && i > 0 && <button onClick={() => { void askRollback(v.version) }}>Roll back to v{v.version}</button>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {shown !== undefined && <><h4>v{shown.version} changed</h4><DiffTable changes={shown.changes} /></>}
      </div>
      {ask !== undefined && (
        <Confirm title={`Roll back ${id} to v${ask.version}?`} yes='Roll back' onYes={() => { void rollback() }} onNo={() => { setAsk(undefined) }}>
          <p>It is published as a new version and the edge stays there until released. What changes from v{latest}:</p>
          <DiffTable changes={ask.changes} />
        </Confirm>
      )}
      <div class='card'>
        <h3>Effective config</h3>
        <ErrorBox error={eff.error} />
        <table class='provenance'>
          <thead><tr><th>Path</th><th>Value</th><th>Set by</th></tr></thead>
          <tbody>
            {Object.entries(prov).sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, layer]) => (
              <tr key={p}><td><code>{p}</code></td><td>{JSON.stringify(valueAt(eff.data?.config, p))}</td><td><Badge kind='layer'>{layer}</Badge></td></tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  )
}

/** The leaf at a provenance path (list items addressed by id, as the EMS service does). */
function valueAt (doc: unknown, path: string): unknown {
  let cur: unknown = doc
  for (const part of path.split('/').slice(1)) {
    if (Array.isArray(cur)) {
      cur = cur.find((x: unknown) => typeof x === 'object' && x !== null && ((x as Record<string, unknown>).id === part || (x as Record<string, unknown>).device_id === part)) ?? cur[Number(part)]
    } else if (typeof cur === 'object' && cur !== null) {
      cur = (cur as Record<string, unknown>)[part]
    } else return undefined
  }
  return cur
}

function HeldObjects ({ org, type, id }: { org: string, type: string, id: string }): preact.JSX.Element {
  const held = useLoad(async () => await get<Held[]>(`/api/v1/destinations/${enc(org)}/${enc(type)}/${enc(id)}/objects`), [org, type, id])
  return (
    <div class='card'>
      <h3>Objects for this edge</h3>
      <ErrorBox error={held.error} />
      <table>
        <thead><tr><th>Type</th><th>Id</th><th>Instance</th><th>Delivery</th><th>Detail</th></tr></thead>
        <tbody>
          {(held.data ?? []).map((o) => (
            <tr key={`${o.objectType}/${o.objectID}`}>
              <td>{o.objectType}</td><td>{o.objectID}</td><td>{o.instanceID}</td>
              <td><Badge kind={o.status === 'consumed' ? 'ok' : o.status === 'error' ? 'bad' : 'warn'}>{o.status}</Badge></td>
              <td>{o.message || o.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
