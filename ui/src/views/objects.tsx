/** Objects: by type, each with its metadata, delivery per destination (progress), history; upload. */
import { useState } from 'preact/hooks'
import { call, enc, getOr } from '../api.js'
import { Badge, ErrorBox, Kv, Progress, ago, useLoad } from '../ui.js'

interface Meta { objectID: string, objectType: string, instanceID: number, objectSize?: number, destinationType?: string, destinationID?: string, lastUpdate?: string, status?: string, version?: string, [k: string]: unknown }
interface Dest { destinationType: string, destinationID: string, status: string, instanceID: number, detail: string, message: string, bytesReceived?: number, lastUpdate: string }

export function Objects ({ org, admin }: { org: string, admin: boolean }): preact.JSX.Element {
  const types = useLoad(async () => (await getOr<string[]>(`/api/v1/objects/${enc(org)}?list_object_type=true`)) ?? [], [org])
  const [type, setType] = useState('')
  const [picked, setPicked] = useState<Meta>()
  const list = useLoad(async () => type === '' ? [] : ((await getOr<Meta[]>(`/api/v1/objects/${enc(org)}?filters=true&objectType=${enc(type)}`)) ?? []), [org, type])
  return (
    <section>
      <h2>Objects</h2>
      <ErrorBox error={types.error ?? list.error} />
      <div class='filters'>
        <label>
          Type
          <select name='object-type' value={type} onChange={(e) => { setType(e.currentTarget.value); setPicked(undefined) }}>
            <option value=''>choose</option>
            {(types.data ?? []).map((t) => <option key={t} value={t}>{t}</option>)}
          </select>
        </label>
      </div>
      {type !== '' && (
        <table>
          <thead><tr><th>Id</th><th>Instance</th><th>Size</th><th>Addressed to</th><th>Status</th><th>Updated</th></tr></thead>
          <tbody>
            {(list.data ?? []).map((m) => (
              <tr key={m.objectID}>
                <td><a href='#/objects' onClick={(e) => { e.preventDefault(); setPicked(m) }}>{m.objectID}</a></td>
                <td>{m.instanceID}</td><td>{m.objectSize ?? 0}</td>
                <td>{m.destinationType ?? 'all'}{m.destinationID === undefined || m.destinationID === '' ? '' : `/${m.destinationID}`}</td>
                <td>{m.status}</td><td>{ago(m.lastUpdate)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {picked !== undefined && <ObjectDetail org={org} meta={picked} />}
      {admin && <Upload org={org} done={() => { types.reload(); list.reload() }} />}
    </section>
  )
}

function ObjectDetail ({ org, meta }: { org: string, meta: Meta }): preact.JSX.Element {
  const base = `/api/v1/objects/${enc(org)}/${enc(meta.objectType)}/${enc(meta.objectID)}`
  const dests = useLoad(async () => (await getOr<Dest[]>(`${base}/destinations`)) ?? [], [base])
  const hist = useLoad(async () => (await getOr<Meta[]>(`${base}/history`)) ?? [], [base])
  const size = meta.objectSize ?? 0
  return (
    <div class='card'>
      <h3>{meta.objectType}/{meta.objectID}</h3>
      <Kv rows={Object.entries(meta).filter(([, v]) => typeof v !== 'object').map(([k, v]) => [k, String(v)])} />
      <h4>Delivery</h4>
      <ErrorBox error={dests.error} />
      <table>
        <thead><tr><th>Destination</th><th>Instance</th><th>Status</th><th>Progress</th><th>Detail</th></tr></thead>
        <tbody>
          {(dests.data ?? []).map((d) => (
            <tr key={`${d.destinationType}/${d.destinationID}`}>
              <td>{d.destinationType}/{d.destinationID}</td><td>{d.instanceID}</td>
              <td><Badge kind={d.status === 'consumed' ? 'ok' : d.status === 'error' ? 'bad' : 'warn'}>{d.status}</Badge></td>
              <td><Progress value={d.status === 'delivering' ? (d.bytesReceived ?? 0) : size} max={size} /></td>
              <td>{d.message || d.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h4>History</h4>
      <table>
        <thead><tr><th>Instance</th><th>Size</th><th>Status</th><th>Updated</th></tr></thead>
        <tbody>
          {(hist.data ?? []).map((h) => <tr key={h.instanceID}><td>{h.instanceID}</td><td>{h.objectSize ?? 0}</td><td>{h.status}</td><td>{ago(h.lastUpdate)}</td></tr>)}
        </tbody>
      </table>
    </div>
  )
}

function Upload ({ org, done }: { org: string, done: () => void }): preact.JSX.Element {
  const [f, setF] = useState({ type: '', id: '', destType: '', destId: '' })
  const [file, setFile] = useState<File>()
  const [msg, setMsg] = useState('')
  const [error, setError] = useState<unknown>()
  const send = async (): Promise<void> => {
    setError(undefined); setMsg('')
    const base = `/api/v1/objects/${enc(org)}/${enc(f.type)}/${enc(f.id)}`
    try {
      const meta = { objectID: f.id, objectType: f.type, ...(f.destType === '' ? {} : { destinationType: f.destType }), ...(f.destId === '' ? {} : { destinationID: f.destId }), ...(file === undefined ? { noData: true } : {}) }
      await call('PUT', base, { meta })
      if (file !== undefined) await call('PUT', `${base}/data`, undefined, file)
      setMsg(`Stored ${f.type}/${f.id}${file === undefined ? '' : ` (${file.size} bytes)`}`)
      done()
    } catch (err) { setError(err) }
  }
  const field = (k: keyof typeof f, label: string): preact.JSX.Element => (
    <label>{label} <input name={`upload-${k}`} value={f[k]} onInput={(e) => { setF({ ...f, [k]: e.currentTarget.value }) }} /></label>
  )
  return (
    <div class='card'>
      <h3>Upload an object</h3>
      <div class='filters'>
        {field('type', 'Type')}{field('id', 'Id')}{field('destType', 'Destination type')}{field('destId', 'Destination id')}
        <label>File <input type='file' name='upload-file' onChange={(e) => { setFile(e.currentTarget.files?.[0]) }} /></label>
        <button class='primary' onClick={() => { void send() }}>Upload</button>
      </div>
      <ErrorBox error={error} />
      {msg !== '' && <p class='note'>{msg}</p>}
    </div>
  )
}
