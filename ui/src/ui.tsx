/** Small shared pieces: loading state, tables, badges, diffs, errors, a confirm dialog. */
import type { ComponentChildren } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, enc } from './api.js'

/** One leaf that changed between two configs (as the EMS service's diff reports it). */
export interface Change { path: string, from?: unknown, to?: unknown }

/** Runs `load` when `deps` change; `reload` runs it again. */
export function useLoad<T> (load: () => Promise<T>, deps: unknown[]): { data?: T, error?: unknown, reload: () => void } {
  const [state, setState] = useState<{ data?: T, error?: unknown }>({})
  const [n, setN] = useState(0)
  useEffect(() => {
    let live = true
    load().then((data) => { if (live) setState({ data }) }, (error: unknown) => { if (live) setState({ error }) })
    return () => { live = false }
  }, [...deps, n])
  const reload = useCallback(() => { setN((x) => x + 1) }, [])
  return { ...state, reload }
}

export function ErrorBox ({ error }: { error: unknown }): preact.JSX.Element | null {
  if (error === undefined || error === null) return null
  const e = error instanceof ApiError ? error : undefined
  return (
    <div class='error' role='alert'>
      <strong>{e?.code ?? 'Error'}</strong> {error instanceof Error ? error.message : String(error)}
    </div>
  )
}

export function Loading ({ what }: { what: string }): preact.JSX.Element {
  return <p class='muted'>Loading {what}...</p>
}

export function Badge ({ kind, children }: { kind: string, children: ComponentChildren }): preact.JSX.Element {
  return <span class={`badge badge-${kind}`}>{children}</span>
}

export function ago (iso: string | undefined): string {
  if (iso === undefined) return '-'
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000)
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86400)} d ago`
}

const show = (v: unknown): string => (v === undefined ? '(none)' : JSON.stringify(v))

export function DiffTable ({ changes, empty = 'No change' }: { changes: Change[], empty?: string }): preact.JSX.Element {
  if (changes.length === 0) return <p class='muted'>{empty}</p>
  return (
    <table class='diff'>
      <thead><tr><th>Path</th><th>Before</th><th>After</th></tr></thead>
      <tbody>
        {changes.map((c) => (
          <tr key={c.path}>
            <td><code>{c.path}</code></td>
            <td class='del'>{show(c.from)}</td>
            <td class='add'>{show(c.to)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

export function Progress ({ value, max }: { value: number, max: number }): preact.JSX.Element {
  const pct = max <= 0 ? 100 : Math.min(100, Math.round((value / max) * 100))
  return <progress value={pct} max={100} title={`${pct}%`}>{pct}%</progress>
}

/** A modal asking to confirm; children say what will happen. */
export function Confirm ({ title, children, onYes, onNo, yes = 'Confirm' }: {
  title: string, children: ComponentChildren, onYes: () => void, onNo: () => void, yes?: string
}): preact.JSX.Element {
  return (
    <div class='modal' role='dialog' aria-label={title}>
      <div class='modal-box'>
        <h3>{title}</h3>
        {children}
        <div class='actions'>
          <button class='primary' onClick={onYes}>{yes}</button>
          <button onClick={onNo}>Cancel</button>
        </div>
      </div>
    </div>
  )
}

export function Kv ({ rows }: { rows: Array<[string, ComponentChildren]> }): preact.JSX.Element {
  return (
    <dl class='kv'>
      {rows.map(([k, v]) => [<dt key={`k${k}`}>{k}</dt>, <dd key={`v${k}`}>{v}</dd>])}
    </dl>
  )
}

export function watts (w: unknown): string {
  return typeof w === 'number' ? `${(w / 1000).toFixed(1)} kW` : '-'
}

/**
 * Calls `changed` whenever the org's fleet changed (server-sent events from the CSS), and every
 * `pollMs` too: another CSS instance's changes do not reach this instance's stream. Returns
 * whether the stream is connected.
 */
export function useFleetEvents (org: string, changed: () => void, pollMs = 30_000): boolean {
  const [live, setLive] = useState(false)
  const ref = useRef(changed)
  ref.current = changed
  useEffect(() => {
    const es = new EventSource(`/api/v1/fleet/${enc(org)}/events`)
    es.onopen = () => { setLive(true) }
    es.onerror = () => { setLive(false) }
    es.addEventListener('fleet', () => { ref.current() })
    const poll = setInterval(() => { ref.current() }, pollMs)
    return () => { es.close(); clearInterval(poll) }
  }, [org])
  return live
}
