/**
 * Dashboard sessions. A login with an app key and secret gets a random token in an HttpOnly,
 * SameSite=Strict cookie and a CSRF token the page sends back on every change. Sessions live in
 * the settings store (shared by every CSS instance on a shared store), under the SHA-256 of the
 * token, never the token. Each use re-reads the user: a disabled, removed or rotated key ends its
 * sessions at once. Expiry is absolute (`ttlMs` after login) and checked here, not by the browser.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { NotFoundError } from '../common/errors.js'
import type { Identity } from '../security/index.js'
import type { SettingStore, UserStore } from '../storage/index.js'

const PREFIX = 'ui-session/'

interface Saved {
  appKey: string
  csrf: string
  expiresAt: number
  /** Ties the session to the secret it was opened with: a rotation ends it. */
  secretTag: string
}

export interface Session {
  identity: Identity
  csrf: string
  expiresAt: number
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex')

export class UiSessions {
  readonly #settings: SettingStore
  readonly #users: UserStore
  readonly #ttlMs: number

  constructor (settings: SettingStore, users: UserStore, ttlMs: number) {
    this.#settings = settings
    this.#users = users
    this.#ttlMs = ttlMs
  }

  /** For a verified identity: the cookie token and the session. */
  async open (identity: Identity): Promise<{ token: string, session: Session }> {
    const user = await this.#users.get(identity.appKey)
    if (user === undefined) throw new NotFoundError(`No user ${identity.appKey}`)
    await this.#sweep()
    const token = randomBytes(32).toString('base64url')
    const saved: Saved = {
      appKey: identity.appKey,
      csrf: randomBytes(24).toString('base64url'),
      expiresAt: Date.now() + this.#ttlMs,
      secretTag: sha256(user.secretHash).slice(0, 32)
    }
    await this.#settings.set(PREFIX + sha256(token), JSON.stringify(saved))
    return { token, session: { identity, csrf: saved.csrf, expiresAt: saved.expiresAt } }
  }

  /** The live session of a cookie token, if any. */
  async check (token: string): Promise<Session | undefined> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(token)) return undefined
    const name = PREFIX + sha256(token)
    const raw = await this.#settings.get(name)
    if (raw === undefined) return undefined
    const saved = JSON.parse(raw) as Saved
    if (saved.expiresAt < Date.now()) {
      await this.#settings.remove(name)
      return undefined
    }
    const user = await this.#users.get(saved.appKey)
    if (user === undefined || user.disabled || sha256(user.secretHash).slice(0, 32) !== saved.secretTag) {
      await this.#settings.remove(name)
      return undefined
    }
    return {
      identity: { appKey: user.appKey, orgId: user.orgId, role: user.role },
      csrf: saved.csrf,
      expiresAt: saved.expiresAt
    }
  }

  async close (token: string): Promise<void> {
    if (/^[A-Za-z0-9_-]{20,100}$/.test(token)) await this.#settings.remove(PREFIX + sha256(token))
  }

  /** Drops expired sessions (at each login: their number stays that of recent logins). */
  async #sweep (): Promise<void> {
    const now = Date.now()
    for (const [name, raw] of await this.#settings.list(PREFIX)) {
      try {
        if ((JSON.parse(raw) as Saved).expiresAt < now) await this.#settings.remove(name)
      } catch {
        await this.#settings.remove(name)
      }
    }
  }
}

/** Constant-time comparison of the CSRF token a page sent with the session's. */
export function csrfMatches (sent: string | string[] | undefined, expected: string): boolean {
  if (typeof sent !== 'string') return false
  const a = Buffer.from(sent)
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The value of cookie `name` in a Cookie header. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}

/**
 * The session cookie's name: browsers keep one cookie jar per host whatever the port, so a CSS
 * and ESSs on one machine each get their own name (by the port the browser used), and logging in
 * to one never logs out another.
 */
export function cookieName (kind: 'css' | 'ess', host: string | undefined, https: boolean): string {
  const port = /:(\d{1,5})$/.exec(host ?? '')?.[1] ?? (https ? '443' : '80')
  return `edgesync_${kind}_${port}`
}
