/** Admin: app keys (add, disable, rotate: a secret is shown once), ACLs, node enrollment, signing keys, audit log. */
import { useState } from 'preact/hooks'
import { call, enc, get, getOr } from '../api.js'
import { Badge, ErrorBox, ago, useLoad } from '../ui.js'

interface User { appKey: string, role: string, disabled: boolean, created?: string }
interface Audit { at: string, actor: string, action: string, target: string, detail?: unknown }
interface Enrolled { appKey: string, secret: string, orgID: string, destinationType: string, destinationID: string, signingKey?: string, brokerUrls: string[] }

export function Admin ({ org }: { org: string }): preact.JSX.Element {
  const [secret, setSecret] = useState<{ who: string, secret: string }>()
  return (
    <section>
      <h2>Admin</h2>
      {secret !== undefined && (
        <div class='card secret' role='status'>
          <h3>Secret of {secret.who}</h3>
          <p>Shown once: copy it now. It is not stored in readable form.</p>
          <pre data-testid='secret'>{secret.secret}</pre>
          <button onClick={() => { setSecret(undefined) }}>I copied it</button>
        </div>
      )}
      <Users org={org} onSecret={setSecret} />
      <Enroll org={org} />
      <Acls org={org} />
      <Keys org={org} />
      <AuditLog org={org} />
    </section>
  )
}

function Users ({ org, onSecret }: { org: string, onSecret: (s: { who: string, secret: string }) => void }): preact.JSX.Element {
  const users = useLoad(async () => await get<User[]>(`/api/v1/users/${enc(org)}`), [org])
  const [key, setKey] = useState('')
  const [role, setRole] = useState('user')
  const [error, setError] = useState<unknown>()
  const run = async (f: () => Promise<void>): Promise<void> => {
    setError(undefined)
    try { await f(); users.reload() } catch (err) { setError(err) }
  }
  return (
    <div class='card'>
      <h3>App keys</h3>
      <ErrorBox error={error ?? users.error} />
      <table>
        <thead><tr><th>App key</th><th>Role</th><th>State</th><th /></tr></thead>
        <tbody>
          {(users.data ?? []).filter((u) => u.role !== 'node').map((u) => (
            <tr key={u.appKey} data-user={u.appKey}>
              <td>{u.appKey}</td><td>{u.role}</td>
              <td><Badge kind={u.disabled ? 'bad' : 'ok'}>{u.disabled ? 'disabled' : 'active'}</Badge></td>
              <td>
                <button onClick={() => { void run(async () => { await call('PUT', `/api/v1/users/${enc(org)}/${enc(u.appKey)}`, { disabled: !u.disabled }) }) }}>{u.disabled ? 'Enable' : 'Disable'}</button>
                <button onClick={() => { void run(async () => { const r = await call<{ secret: string }>('POST', `/api/v1/users/${enc(org)}/${enc(u.appKey)}/rotate`); onSecret({ who: u.appKey, secret: r.secret }) }) }}>Rotate secret</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class='filters'>
        <label>New app key <input name='new-key' value={key} onInput={(e) => { setKey(e.currentTarget.value) }} /></label>
        <label>
          Role
          <select name='new-role' value={role} onChange={(e) => { setRole(e.currentTarget.value) }}>
            <option value='user'>user</option><option value='orgAdmin'>orgAdmin</option>
          </select>
        </label>
        <button class='primary' onClick={() => { void run(async () => { const r = await call<{ secret: string }>('POST', `/api/v1/users/${enc(org)}`, { appKey: key, role }); onSecret({ who: key, secret: r.secret }); setKey('') }) }}>Add</button>
      </div>
    </div>
  )
}

/** The ESS's sync.conf lines for a newly enrolled node (copied to the edge). */
function snippet (e: Enrolled): string {
  return [
    'NodeType ESS',
    `OrgID ${e.orgID}`,
    `DestinationType ${e.destinationType}`,
    `DestinationID ${e.destinationID}`,
    `NodeSecret ${e.secret}`,
    `BrokerAddress ${e.brokerUrls[0] ?? 'mqtt://<css-host>:1883'}`,
    ...(e.signingKey === undefined ? [] : [`SigningKey ${e.signingKey}`])
  ].join('\n')
}

function Enroll ({ org }: { org: string }): preact.JSX.Element {
  const [type, setType] = useState('edge')
  const [id, setId] = useState('')
  const [done, setDone] = useState<Enrolled>()
  const [error, setError] = useState<unknown>()
  const enroll = async (): Promise<void> => {
    setError(undefined)
    try { setDone(await call<Enrolled>('POST', `/api/v1/nodes/${enc(org)}/${enc(type)}/${enc(id)}/enroll`)) } catch (err) { setError(err) }
  }
  return (
    <div class='card'>
      <h3>Enroll a node</h3>
      <div class='filters'>
        <label>Type <input name='enroll-type' value={type} onInput={(e) => { setType(e.currentTarget.value) }} /></label>
        <label>Id <input name='enroll-id' value={id} onInput={(e) => { setId(e.currentTarget.value) }} /></label>
        <button class='primary' onClick={() => { void enroll() }}>Enroll</button>
      </div>
      <ErrorBox error={error} />
      {done !== undefined && (
        <>
          <p>Put these lines in the edge's sync.conf (the secret is shown once):</p>
          <pre data-testid='enroll-snippet'>{snippet(done)}</pre>
        </>
      )}
    </div>
  )
}

function Acls ({ org }: { org: string }): preact.JSX.Element {
  const keys = useLoad(async () => (await getOr<string[]>(`/api/v1/security/objects/${enc(org)}?all_keys=true`)) ?? [], [org])
  const [type, setType] = useState('')
  const [user, setUser] = useState('')
  const [role, setRole] = useState('aclReader')
  const [error, setError] = useState<unknown>()
  const add = async (): Promise<void> => {
    setError(undefined)
    try {
      await call('PUT', `/api/v1/security/objects/${enc(org)}/${enc(type)}`, { action: 'add', users: [{ ACLUserType: 'user', Username: user, ACLRole: role }] })
      keys.reload()
    } catch (err) { setError(err) }
  }
  return (
    <div class='card'>
      <h3>Object-type ACLs</h3>
      <ErrorBox error={error ?? keys.error} />
      <p>Types with an ACL: {(keys.data ?? []).join(', ') || 'none'}</p>
      <div class='filters'>
        <label>Object type <input name='acl-type' value={type} onInput={(e) => { setType(e.currentTarget.value) }} /></label>
        <label>User <input name='acl-user' value={user} onInput={(e) => { setUser(e.currentTarget.value) }} /></label>
        <label>Role <select value={role} onChange={(e) => { setRole(e.currentTarget.value) }}><option>aclReader</option><option>aclWriter</option></select></label>
        <button onClick={() => { void add() }}>Grant</button>
      </div>
    </div>
  )
}

function Keys ({ org }: { org: string }): preact.JSX.Element {
  const keys = useLoad(async () => await get<unknown[]>(`/api/v1/keys/${enc(org)}`), [org])
  return (
    <div class='card'>
      <h3>Signing keys</h3>
      <ErrorBox error={keys.error} />
      <ul>{(keys.data ?? []).map((k, i) => <li key={i}><code>{typeof k === 'string' ? k : JSON.stringify(k)}</code>{i === 0 ? ' (current)' : ''}</li>)}</ul>
    </div>
  )
}

function AuditLog ({ org }: { org: string }): preact.JSX.Element {
  const log = useLoad(async () => await get<Audit[]>(`/api/v1/audit/${enc(org)}`), [org])
  return (
    <div class='card'>
      <h3>Audit log</h3>
      <ErrorBox error={log.error} />
      <table class='audit'>
        <thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th></tr></thead>
        <tbody>
          {[...(log.data ?? [])].reverse().slice(0, 200).map((a, i) => (
            <tr key={i}><td title={a.at}>{ago(a.at)}</td><td>{a.actor}</td><td>{a.action}</td><td>{a.target}</td></tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
