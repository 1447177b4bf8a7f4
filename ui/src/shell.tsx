/** Login form and the session around a page (shared by the CSS dashboard and the ESS page). */
import type { ComponentChildren } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { login, logout, session, setSession, type Me } from './api.js'
import { ErrorBox } from './ui.js'

export function Login ({ title, onIn }: { title: string, onIn: (me: Me) => void }): preact.JSX.Element {
  const [key, setKey] = useState('')
  const [secret, setSecret] = useState('')
  const [error, setError] = useState<unknown>()
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    setError(undefined)
    try { onIn(await login(key, secret)) } catch (err) { setError(err) }
  }
  return (
    <form class='login card' onSubmit={(e) => { void submit(e) }}>
      <h1>{title}</h1>
      <label>App key <input name='appKey' autocomplete='username' value={key} onInput={(e) => { setKey(e.currentTarget.value) }} /></label>
      <label>Secret <input name='secret' type='password' autocomplete='current-password' value={secret} onInput={(e) => { setSecret(e.currentTarget.value) }} /></label>
      <button class='primary' type='submit'>Log in</button>
      <ErrorBox error={error} />
    </form>
  )
}

/** Renders `children(me, out)` once logged in, the login form otherwise. */
export function WithSession ({ title, children }: { title: string, children: (me: Me, out: () => void) => ComponentChildren }): preact.JSX.Element {
  const [me, setMe] = useState<Me | null>()
  useEffect(() => {
    const gone = (): void => { setSession(undefined); setMe(null) }
    session().then((m) => { setSession(m, gone); setMe(m ?? null) }, () => { setMe(null) })
  }, [])
  if (me === undefined) return <p class='boot'>Loading...</p>
  if (me === null) return <Login title={title} onIn={(m) => { setSession(m); setMe(m) }} />
  const out = (): void => {
    void logout().finally(() => { setSession(undefined); setMe(null) })
  }
  return <>{children(me, out)}</>
}

/** The location hash as path parts: `#/edge/t/id` -> ['edge', 't', 'id']. */
export function useRoute (): string[] {
  const parse = (): string[] => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
  const [route, setRoute] = useState(parse)
  useEffect(() => {
    const on = (): void => { setRoute(parse()) }
    addEventListener('hashchange', on)
    return () => { removeEventListener('hashchange', on) }
  }, [])
  return route
}
