/**
 * Checks app key/secret pairs against the user store. Successful checks are cached briefly (keyed by
 * an HMAC of the secret, never the secret) because scrypt is deliberately slow; a disabled or removed
 * key stops working at once because the user record is read on every call.
 */
import { createHmac, randomBytes } from 'node:crypto'
import type { UserRecord } from '../common/model.js'
import type { UserStore } from '../storage/index.js'
import { verifySecret } from './secrets.js'

const CACHE_TTL_MS = 60_000

export interface Identity {
  appKey: string
  orgId: string
  role: UserRecord['role']
}

export class Authenticator {
  readonly #users: UserStore
  readonly #pepper = randomBytes(32)
  readonly #ok = new Map<string, number>()
  /** The last identity verified per key, for a store outage (see check). */
  readonly #lastGood = new Map<string, { identity: Identity; secretTag: string; until: number }>()

  constructor (users: UserStore) {
    this.#users = users
  }

  async check (appKey: string, secret: string): Promise<Identity | undefined> {
    const secretTag = createHmac('sha256', this.#pepper).update(secret).digest('base64')
    let user: UserRecord | undefined
    try {
      user = await this.#users.get(appKey)
    } catch (err) {
      // The store is down: a key verified within the last minute still gets in (to read health
      // and see the outage), since nothing can be changed, disabled included, until it is back.
      const last = this.#lastGood.get(appKey)
      if (last !== undefined && last.secretTag === secretTag && last.until >= Date.now()) return last.identity
      throw err
    }
    if (user === undefined || user.disabled) return undefined
    const tag = `${appKey}\u0000${user.secretHash}\u0000${secretTag}`
    const until = this.#ok.get(tag)
    if (until === undefined || until < Date.now()) {
      if (!(await verifySecret(secret, user.secretHash))) return undefined
      if (this.#ok.size > 10_000) this.#ok.clear()
      this.#ok.set(tag, Date.now() + CACHE_TTL_MS)
    }
    const identity = { appKey: user.appKey, orgId: user.orgId, role: user.role }
    if (this.#lastGood.size > 10_000) this.#lastGood.clear()
    this.#lastGood.set(appKey, { identity, secretTag, until: Date.now() + CACHE_TTL_MS })
    return identity
  }
}

/** Parses `Authorization: Basic base64(key:secret)`. */
export function parseBasicAuth (header: string | undefined): { key: string; secret: string } | undefined {
  if (header === undefined) return undefined
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header)
  if (m?.[1] === undefined) return undefined
  const text = Buffer.from(m[1], 'base64').toString('utf8')
  const i = text.indexOf(':')
  if (i <= 0) return undefined
  return { key: text.slice(0, i), secret: text.slice(i + 1) }
}
