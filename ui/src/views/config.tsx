/**
 * Configuration: edit an org, site or edge layer as JSON; the server's preview shows, per edge,
 * what changes and any problem at its path (schema and semantic checks run on the server, on each
 * edge's merged config). Apply publishes exactly what was previewed. Bulk: one value for every
 * edge of a site or selector, with the same preview.
 */
import { useState } from 'preact/hooks'
import { ApiError, call, enc, getOr } from '../api.js'
import type { Change } from '../ui.js'
import { DiffTable, ErrorBox } from '../ui.js'

interface Problem { path: string, rule: string, message: string }
interface Outcome { edge: string, changes: Change[], version?: number, problems?: Problem[], incomplete?: string[], pinned?: unknown }

function Outcomes ({ list, verb }: { list: Outcome[], verb: string }): preact.JSX.Element {
  if (list.length === 0) return <p class='muted'>No edge is affected.</p>
  return (
    <div class='outcomes'>
      {list.map((o) => (
        <div key={o.edge} class='outcome' data-edge={o.edge}>
          <h4>{o.edge} {o.version !== undefined && <span class='muted'>{verb} v{o.version}</span>}</h4>
          {o.pinned !== undefined && <p class='note'>Pinned by a rollback: waits until released.</p>}
          {o.incomplete !== undefined && <p class='note'>Incomplete config (missing {o.incomplete.join(', ')}): not sent.</p>}
          {(o.problems ?? []).length > 0 && <ProblemList problems={o.problems ?? []} />}
          <DiffTable changes={o.changes} />
        </div>
      ))}
    </div>
  )
}

function ProblemList ({ problems }: { problems: Problem[] }): preact.JSX.Element {
  return (
    <ul class='problems' role='alert'>
      {problems.map((p) => <li key={p.path + p.rule} data-path={p.path}><code>{p.path}</code> {p.message} <span class='muted'>({p.rule})</span></li>)}
    </ul>
  )
}

/** Problems a refused apply names, per edge (ValidationError details). */
function refused (err: unknown): Outcome[] {
  if (!(err instanceof ApiError)) return []
  return (err.errors as Array<{ edge?: string, problems?: Problem[] }>)
    .filter((e) => typeof e === 'object' && e !== null && e.edge !== undefined)
    .map((e) => ({ edge: e.edge ?? '', changes: [], problems: e.problems ?? [] }))
}

export function Config ({ org, admin }: { org: string, admin: boolean }): preact.JSX.Element {
  return (
    <section>
      <h2>Configuration</h2>
      <LayerEditor org={org} admin={admin} />
      <Bulk org={org} admin={admin} />
    </section>
  )
}

function LayerEditor ({ org, admin }: { org: string, admin: boolean }): preact.JSX.Element {
  const [kind, setKind] = useState('site')
  const [id, setId] = useState('')
  const [text, setText] = useState('')
  const [loaded, setLoaded] = useState('')
  const [syntax, setSyntax] = useState('')
  const [preview, setPreview] = useState<Outcome[]>()
  const [result, setResult] = useState<Outcome[]>()
  const [error, setError] = useState<unknown>()
  const layer = kind === 'org' ? 'org' : `${kind}:${id}`
  const url = `/api/v1/ems/${enc(org)}/layers/${enc(layer)}`
  const load = async (): Promise<void> => {
    setError(undefined); setPreview(undefined); setResult(undefined)
    try {
      const doc = await getOr<unknown>(url)
      setText(JSON.stringify(doc ?? {}, null, 2))
      setLoaded(layer)
    } catch (err) { setError(err) }
  }
  const parsed = (): unknown => {
    try { const v: unknown = JSON.parse(text); setSyntax(''); return v } catch (err) { setSyntax((err as Error).message); return undefined }
  }
  const doPreview = async (): Promise<void> => {
    setError(undefined); setResult(undefined)
    const doc = parsed()
    if (doc === undefined) return
    try { setPreview((await call<{ preview: Outcome[] }>('PUT', `${url}?preview=true`, doc)).preview) } catch (err) { setError(err) }
  }
  const apply = async (): Promise<void> => {
    setError(undefined)
    const doc = parsed()
    if (doc === undefined) return
    try {
      setResult((await call<{ published: Outcome[] }>('PUT', url, doc)).published)
      setPreview(undefined)
    } catch (err) { setError(err); setPreview(refused(err)) }
  }
  const blocked = preview === undefined || preview.some((o) => (o.problems ?? []).length > 0)
  return (
    <div class='card'>
      <h3>Edit a layer</h3>
      <div class='filters'>
        <label>
          Layer
          <select name='layer-kind' value={kind} onChange={(e) => { setKind(e.currentTarget.value) }}>
            <option value='org'>org</option><option value='site'>site</option><option value='edge'>edge</option>
          </select>
        </label>
        {kind !== 'org' && <label>Id <input name='layer-id' value={id} onInput={(e) => { setId(e.currentTarget.value) }} /></label>}
        <button onClick={() => { void load() }}>Load</button>
      </div>
      {loaded !== '' && (
        <>
          <p class='muted'>Editing <code>{loaded}</code>. Values here override the layers below them (org, then site, then edge).</p>
          <textarea
            name='layer-json' class='json' rows={16} spellcheck={false} value={text}
            onInput={(e) => { setText(e.currentTarget.value); setPreview(undefined) }}
          />
          {syntax !== '' && <div class='error' role='alert'>Not JSON: {syntax}</div>}
          <div class='actions'>
            <button onClick={() => { void doPreview() }}>Preview</button>
            {admin && <button class='primary' disabled={blocked} onClick={() => { void apply() }}>Apply</button>}
          </div>
        </>
      )}
      <ErrorBox error={error} />
      {preview !== undefined && <><h4>Preview</h4><Outcomes list={preview} verb='would become' /></>}
      {result !== undefined && <><h4 data-testid='applied'>Applied</h4><Outcomes list={result} verb='now' /></>}
    </div>
  )
}

function Bulk ({ org, admin }: { org: string, admin: boolean }): preact.JSX.Element {
  const [path, setPath] = useState('')
  const [value, setValue] = useState('')
  const [scope, setScope] = useState('')
  const [list, setList] = useState<{ applied: boolean, edges: Outcome[] }>()
  const [error, setError] = useState<unknown>()
  const send = async (apply: boolean): Promise<void> => {
    setError(undefined)
    let v: unknown
    try { v = JSON.parse(value) } catch { setError(new Error('The value must be JSON (a number, "text", true, {...})')); return }
    const target = scope.includes('=')
      ? { selector: Object.fromEntries(scope.split(',').map((p) => p.split('=').map((x) => x.trim()))) }
      : { site: scope.trim() }
    try {
      const r = await call<{ edges: Outcome[] }>('POST', `/api/v1/ems/${enc(org)}/bulk`, { path, value: v, ...target, apply })
      setList({ applied: apply, edges: r.edges })
    } catch (err) { setError(err) }
  }
  return (
    <div class='card'>
      <h3>Bulk change</h3>
      <div class='filters'>
        <label>Path <input name='bulk-path' placeholder='/core_cycle/period_ms' value={path} onInput={(e) => { setPath(e.currentTarget.value) }} /></label>
        <label>Value <input name='bulk-value' placeholder='1000' value={value} onInput={(e) => { setValue(e.currentTarget.value) }} /></label>
        <label>Site, or selector k=v <input name='bulk-scope' placeholder='site0 or region=north' value={scope} onInput={(e) => { setScope(e.currentTarget.value) }} /></label>
        <button onClick={() => { void send(false) }}>Preview</button>
        {admin && <button class='primary' disabled={list === undefined || list.applied} onClick={() => { void send(true) }}>Apply</button>}
      </div>
      <ErrorBox error={error} />
      {list !== undefined && <Outcomes list={list.edges} verb={list.applied ? 'now' : 'would become'} />}
    </div>
  )
}
