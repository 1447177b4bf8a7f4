/** The CSS dashboard: fleet, edge, configuration, objects, admin (hash routes). */
import { render } from 'preact'
import { useState } from 'preact/hooks'
import { getOr, type Me } from './api.js'
import { useRoute, WithSession } from './shell.js'
import { useLoad } from './ui.js'
import { Admin } from './views/admin.js'
import { Config } from './views/config.js'
import { Edge } from './views/edge.js'
import { Fleet } from './views/fleet.js'
import { Objects } from './views/objects.js'
import { Rollouts } from './views/rollouts.js'

const NAV: Array<[string, string]> = [['fleet', 'Fleet'], ['config', 'Configuration'], ['rollouts', 'Rollouts'], ['objects', 'Objects'], ['admin', 'Admin']]

function Dashboard ({ me, out }: { me: Me, out: () => void }): preact.JSX.Element {
  const route = useRoute()
  const [chosen, setChosen] = useState(me.orgId)
  // A sync admin works in any org; everyone else in their own.
  const orgs = useLoad(async () => me.role === 'syncAdmin'
    ? ((await getOr<Array<{ 'org-id': string }>>('/api/v1/organizations')) ?? []).map((o) => o['org-id']).filter((o) => o !== '*')
    : [me.orgId], [me.appKey])
  // A sync admin's own org is `*`: it starts in the first org there is.
  const org = chosen === '*' ? (orgs.data?.[0] ?? '') : chosen
  const admin = me.role === 'orgAdmin' || me.role === 'syncAdmin'
  const [view = 'fleet', a = '', b = ''] = route
  return (
    <>
      <header>
        <strong class='brand'>edgesync</strong>
        <nav>{NAV.filter(([k]) => k !== 'admin' || admin).map(([k, label]) => (
          <a key={k} href={`#/${k}`} class={view === k ? 'active' : ''}>{label}</a>
        ))}
        </nav>
        <span class='who'>
          {(orgs.data ?? []).length > 1
            ? <select name='org' value={org} onChange={(e) => { setChosen(e.currentTarget.value) }}>{(orgs.data ?? []).map((o) => <option key={o} value={o}>{o}</option>)}</select>
            : <span class='org'>{org}</span>}
          {' '}{me.appKey} ({me.role}) <button onClick={out}>Log out</button>
        </span>
      </header>
      <main>
        {org === '' && <p class='muted'>{orgs.data === undefined ? 'Loading orgs...' : 'No org yet: create one (syncctl orgs create) or enroll a node.'}</p>}
        {org !== '' && view === 'fleet' && <Fleet org={org} />}
        {org !== '' && view === 'edge' && <Edge org={org} type={a} id={b} admin={admin} />}
        {org !== '' && view === 'config' && <Config org={org} admin={admin} />}
        {org !== '' && view === 'rollouts' && <Rollouts org={org} admin={admin} />}
        {org !== '' && view === 'objects' && <Objects org={org} admin={admin} />}
        {org !== '' && view === 'admin' && admin && <Admin org={org} />}
      </main>
    </>
  )
}

function App (): preact.JSX.Element {
  return <WithSession title='edgesync'>{(me, out) => <Dashboard me={me} out={out} />}</WithSession>
}

render(<App />, document.getElementById('app') ?? document.body)
