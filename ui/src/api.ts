/** The one door to the REST API: same-origin fetch with the session cookie and CSRF token. */

/** A problem+json answer: the API's stable code, its message and (for validation) the details. */
export class ApiError extends Error {
  constructor (readonly status: number, readonly code: string, message: string, readonly errors: unknown[] = []) {
    super(message)
  }
}

export interface Me { appKey: string, orgId: string, role: string, csrf: string, expiresAt: string }

let csrf = ''
/** Called when a request finds the session gone (the shell shows the login form). */
let onLoggedOut: () => void = () => {}

export function setSession (me: Me | undefined, loggedOut?: () => void): void {
  csrf = me?.csrf ?? ''
  if (loggedOut !== undefined) onLoggedOut = loggedOut
}

export async function call<T> (method: string, url: string, body?: unknown, raw?: Blob): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', 'x-requested-with': 'edgesync-ui' }
  if (method !== 'GET') headers['x-csrf-token'] = csrf
  let payload: BodyInit | undefined
  if (raw !== undefined) {
    headers['content-type'] = 'application/octet-stream'
    payload = raw
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  const res = await fetch(url, { method, headers, body: payload ?? null, credentials: 'same-origin' })
  if (res.status === 204) return undefined as T
  const text = await res.text()
  const data: unknown = text === '' ? undefined : JSON.parse(text)
  if (!res.ok) {
    const p = (data ?? {}) as { code?: string, detail?: string, errors?: unknown[] }
    if (res.status === 401 && !url.startsWith('/ui/login')) onLoggedOut()
    throw new ApiError(res.status, p.code ?? `HTTP_${res.status}`, p.detail ?? res.statusText, p.errors ?? [])
  }
  return data as T
}

export const get = async <T>(url: string): Promise<T> => await call<T>('GET', url)

/** `undefined` for a 404 (a thing not there yet is not an error to show). */
export async function getOr<T> (url: string): Promise<T | undefined> {
  try {
    return await get<T>(url)
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined
    throw err
  }
}

export const enc = encodeURIComponent

export async function login (appKey: string, secret: string): Promise<Me> {
  return await call<Me>('POST', '/ui/login', { appKey, secret })
}

export async function logout (): Promise<void> {
  await call('POST', '/ui/logout')
}

export async function session (): Promise<Me | undefined> {
  try {
    return await get<Me>('/ui/session')
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined
    throw err
  }
}
