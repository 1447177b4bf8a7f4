/** Rollouts: each with per-wave progress, its edges' outcomes, and pause/resume/abort/approve; maintenance windows. */
import { useState } from 'preact/hooks'
import { call, enc, get } from '../api.js'
import { Badge, ErrorBox, Progress, ago, useFleetEvents, useLoad } from '../ui.js'

interface Wave { wave: number, size: number, consumed: number, applying: number, error: number, timedOut: number, waiting: number, reverted: number, state: string }
interface Summary { id: string, kind: string, status: string, reason?: string, wave: number, waves: Wave[], createdBy: string, createdAt: string }
interface Detail extends Summary { edges: Array<{ edge: string, wave: number, outcome: string, from?: number, to?: number, revertedTo?: number, message?: string }> }
interface Window { name: string, cron: string, durationSeconds: number, timeZone: string, site?: string, open: boolean, nextOpen?: string, openUntil?: string }

const kindOf = (s: string): string => s === 'completed' ? 'ok' : s === 'aborted' || s === 'paused' ? 'bad' : 'warn'

export function Rollouts ({ org, admin }: { org: string, admin: boolean }): preact.JSX.Element {
  const list = useLoad(async () => await get<Summary[]>(`/api/v1/rollouts/${enc(org)}`), [org])
  const windows = useLoad(async () => await get<Window[]>(`/api/v1/windows/${enc(org)}`), [org])
  const [picked, setPicked] = useState('')
  useFleetEvents(org, list.reload, 3000)
  return (
    <section>
      <h2>Rollouts</h2>
      <ErrorBox error={list.error} />
      {(list.data ?? []).length === 0 && <p class='muted'>No rollout yet: start one with syncctl rollout create, or POST /api/v1/rollouts/{org}.</p>}
      {(list.data ?? []).map((r) => (
        <div key={r.id} class='card' data-rollout={r.id}>
          <h3>
            <a href='#/rollouts' onClick={(e) => { e.preventDefault(); setPicked(r.id) }}>{r.id}</a>{' '}
            <Badge kind={kindOf(r.status)}>{r.status}</Badge> <span class='muted'>{r.kind}, by {r.createdBy} {ago(r.createdAt)}</span>
          </h3>
          {r.reason !== undefined && <p class='note'>{r.reason}</p>}
          <table>
            <thead><tr><th>Wave</th><th>Edges</th><th>Progress</th><th>Applied</th><th>Failed</th><th>Timed out</th><th>Reverted</th><th>State</th></tr></thead>
            <tbody>
              {r.waves.map((w) => (
                <tr key={w.wave} data-wave={w.wave}>
                  <td>{w.wave}</td><td>{w.size}</td>
                  <td><Progress value={w.consumed + w.error + w.timedOut} max={w.size} /></td>
                  <td class='wave-consumed'>{w.consumed}</td><td>{w.error}</td><td>{w.timedOut}</td><td>{w.reverted}</td><td>{w.state}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {admin && r.status !== 'completed' && r.status !== 'aborted' && <Actions org={org} id={r.id} status={r.status} done={list.reload} />}
        </div>
      ))}
      {picked !== '' && <RolloutEdges org={org} id={picked} />}
      <div class='card'>
        <h3>Maintenance windows</h3>
        <ErrorBox error={windows.error} />
        <table>
          <thead><tr><th>Name</th><th>For</th><th>Cron</th><th>Length</th><th>Now</th></tr></thead>
          <tbody>
            {(windows.data ?? []).map((w) => (
              <tr key={w.name}>
                <td>{w.name}</td><td>{w.site === undefined ? 'selector' : `site ${w.site}`}</td><td><code>{w.cron}</code> {w.timeZone}</td>
                <td>{Math.round(w.durationSeconds / 60)} min</td>
                <td>{w.open ? <Badge kind='ok'>open</Badge> : `opens ${w.nextOpen === undefined ? 'not within 8 days' : new Date(w.nextOpen).toLocaleString()}`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}

function Actions ({ org, id, status, done }: { org: string, id: string, status: string, done: () => void }): preact.JSX.Element {
  const [error, setError] = useState<unknown>()
  const act = async (a: string): Promise<void> => {
    setError(undefined)
    if (a === 'abort' && !confirm(`Abort ${id}? Every edge it changed gets back what it had.`)) return
    try { await call('POST', `/api/v1/rollouts/${enc(org)}/${enc(id)}/${a}`); setTimeout(done, 1200) } catch (err) { setError(err) }
  }
  return (
    <div class='actions'>
      {status === 'running' && <button onClick={() => { void act('pause') }}>Pause</button>}
      {status === 'paused' && <button onClick={() => { void act('resume') }}>Resume</button>}
      {status === 'awaiting-approval' && <button class='primary' onClick={() => { void act('approve') }}>Approve next wave</button>}
      <button onClick={() => { void act('abort') }}>Abort and revert</button>
      <ErrorBox error={error} />
    </div>
  )
}

function RolloutEdges ({ org, id }: { org: string, id: string }): preact.JSX.Element {
  const d = useLoad(async () => await get<Detail>(`/api/v1/rollouts/${enc(org)}/${enc(id)}`), [org, id])
  return (
    <div class='card'>
      <h3>Edges of {id}</h3>
      <ErrorBox error={d.error} />
      <table>
        <thead><tr><th>Edge</th><th>Wave</th><th>Outcome</th><th>From</th><th>To</th><th>Reverted to</th><th>Why</th></tr></thead>
        <tbody>
          {(d.data?.edges ?? []).map((e) => (
            <tr key={e.edge}><td>{e.edge}</td><td>{e.wave}</td><td>{e.outcome}</td><td>{e.from ?? ''}</td><td>{e.to ?? ''}</td><td>{e.revertedTo ?? ''}</td><td>{e.message ?? ''}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
