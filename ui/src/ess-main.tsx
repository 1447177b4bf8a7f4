/**
 * The ESS status page (the edge's local API and admin key): connection to the CSS, objects held,
 * plugins with lifecycle controls, the EMS runtime's readings, alarms, version in force and the
 * last apply or rollback with its reason. Refreshes every 2 s.
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { call, enc, get, type Me } from './api.js'
import { WithSession } from './shell.js'
import { Badge, ErrorBox, Kv, ago, useLoad, watts } from './ui.js'

interface Health { general: { healthStatus: string, upTime: number, dropped: number }, transfers?: unknown, plugins: Record<string, Record<string, unknown>> }
interface Held { objectType: string, objectID: string, instanceID: number, status: string, objectSize: number, lastUpdate?: string }

function Status ({ me, out }: { me: Me, out: () => void }): preact.JSX.Element {
  const [tick, setTick] = useState(0)
  useEffect(() => { const t = setInterval(() => { setTick((x) => x + 1) }, 2000); return () => { clearInterval(t) } }, [])
  const health = useLoad(async () => await get<Health>('/api/v1/health'), [tick])
  const held = useLoad(async () => await get<Held[]>('/api/v1/holdings'), [tick])
  const [error, setError] = useState<unknown>()
  const admin = me.role === 'orgAdmin' || me.role === 'syncAdmin'
  const h = health.data
  const ems = h?.plugins.ems
  const r = (ems?.readings ?? {}) as { gridW?: number, pvW?: number, batteryW?: number, soc?: number }
  const holding = ems?.heldForWindow as { version: number, nextOpen?: string } | undefined
  const last = ems?.lastApply as { version?: number, at?: string, outcome?: string, reason?: string } | undefined
  const act = async (name: string, action: string): Promise<void> => {
    setError(undefined)
    try { await call('POST', `/api/v1/plugins/${enc(name)}/${action}`); setTick((x) => x + 1) } catch (err) { setError(err) }
  }
  return (
    <>
      <header>
        <strong class='brand'>{document.title}</strong>
        <span class='who'>{me.appKey} ({me.role}) <button onClick={out}>Log out</button></span>
      </header>
      <main>
        <ErrorBox error={health.error ?? error} />
        {h !== undefined && (
          <div class='cards'>
            <div class='card'>
              <h3>Cloud connection</h3>
              <Kv rows={[
                ['CSS', <Badge key='css' kind={h.general.healthStatus === 'green' ? 'ok' : 'bad'}>{h.general.healthStatus === 'green' ? 'connected' : 'disconnected'}</Badge>],
                ['Up', `${h.general.upTime} s`],
                ['Malformed messages dropped', String(h.general.dropped)]
              ]}
              />
            </div>
            {ems !== undefined && (
              <div class='card' data-testid='ess-ems'>
                <h3>EMS runtime</h3>
                <Kv rows={[
                  ['Config in force', <span key='v' data-testid='ess-active-version'>v{String(ems.activeVersion ?? '-')}</span>],
                  ['Grid', watts(r.gridW)], ['PV', watts(r.pvW)], ['Battery', watts(r.batteryW)],
                  ['State of charge', r.soc === undefined ? '-' : `${r.soc} %`],
                  ['Alarms', (ems.activeAlarms as string[] | undefined)?.join(', ') || 'none'],
                  ['Held for a maintenance window', holding === undefined ? 'nothing' : `v${holding.version} until ${holding.nextOpen === undefined ? 'a window opens' : new Date(holding.nextOpen).toLocaleString()}`],
                  ['Last apply', last === undefined ? '-' : <span data-testid='ess-last-apply'>v{last.version ?? '?'} {last.outcome} {ago(last.at)}{last.reason === undefined ? '' : `: ${last.reason}`}</span>]
                ]}
                />
              </div>
            )}
          </div>
        )}
        {h !== undefined && (
          <div class='card'>
            <h3>Plugins</h3>
            <table>
              <thead><tr><th>Plugin</th><th>State</th><th>Waiting</th>{admin && <th>Actions</th>}</tr></thead>
              <tbody>
                {Object.entries(h.plugins).map(([name, st]) => (
                  <tr key={name} data-plugin={name}>
                    <td>{name}</td><td class='plugin-state'>{String(st.state)}</td><td>{String(st.waiting ?? 0)}</td>
                    {admin && <td>{['pause', 'resume', 'stop', 'start'].map((a) => <button key={a} onClick={() => { void act(name, a) }}>{a}</button>)}</td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <div class='card'>
          <h3>Objects held</h3>
          <ErrorBox error={held.error} />
          <table>
            <thead><tr><th>Type</th><th>Id</th><th>Instance</th><th>State</th><th>Size</th><th>Updated</th></tr></thead>
            <tbody>
              {(held.data ?? []).map((o) => (
                <tr key={`${o.objectType}/${o.objectID}`}><td>{o.objectType}</td><td>{o.objectID}</td><td>{o.instanceID}</td><td>{o.status}</td><td>{o.objectSize}</td><td>{ago(o.lastUpdate)}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      </main>
    </>
  )
}

render(<WithSession title={document.title}>{(me, out) => <Status me={me} out={out} />}</WithSession>, document.getElementById('app') ?? document.body)
