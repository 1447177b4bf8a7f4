/**
 * Signed objects. The CSS signs each object instance it sends (its metadata, which carries the
 * data's sha256) with its org's Ed25519 key; an edge enrolled with the org's public key verifies
 * before anything reaches an app, and the data is checked against the signed hash. Keys rotate
 * without downtime: the new public key is sent to edges in a message signed by the current key.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject
} from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { ValidationError } from '../common/errors.js'

export interface Signature {
  keyId: string
  value: string
}

/** Canonical JSON: keys sorted at every level, so signer and verifier hash the same bytes. */
export function canonical (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}

/** `keyId:base64(SPKI DER)`: how a public key is printed at enrollment and written in sync.conf. */
export function parsePublicKey (text: string): { keyId: string; key: KeyObject } {
  const i = text.indexOf(':')
  if (i <= 0) throw new ValidationError('A signing key is written keyId:base64')
  try {
    return {
      keyId: text.slice(0, i),
      key: createPublicKey({ key: Buffer.from(text.slice(i + 1), 'base64'), format: 'der', type: 'spki' })
    }
  } catch (err) {
    throw new ValidationError('The signing key is not a valid Ed25519 public key', { cause: err })
  }
}

export function verifySignature (
  keys: ReadonlyMap<string, KeyObject>,
  payload: unknown,
  sig: Signature | undefined
): boolean {
  if (sig === undefined) return false
  const key = keys.get(sig.keyId)
  if (key === undefined) return false
  try {
    return verify(null, Buffer.from(canonical(payload)), key, Buffer.from(sig.value, 'base64'))
  } catch {
    return false
  }
}

interface StoredKey {
  keyId: string
  privatePem: string
  publicKey: string
  created: string
  trustSig?: Signature
}
interface OrgKeys {
  generation: number
  current: StoredKey
  previous: StoredKey[]
}

/** Where the keys live: the store's settings, shared by every CSS instance (first writer wins). */
export interface KeySettings {
  get: (name: string) => Promise<string | undefined>
  putIfAbsent: (name: string, value: string) => Promise<string>
}

/** Previous keys kept (and listed) after rotations. */
const KEEP_PREVIOUS = 5
/** How long an instance signs with a key before looking for a rotation made by another instance. */
const RECHECK_MS = 5000

/**
 * Org signing keys in the store's settings, one entry per generation (`signing-key/<org>/<n>`):
 * the first instance to write generation n wins and every instance uses that key, so N CSS
 * instances sign alike. A rotation writes generation n+1; the others find it within RECHECK_MS
 * (edges keep trusting the previous key meanwhile). Keys from a release that kept them in files
 * under `legacyDir` become generation 1 the first time an org is used.
 */
export class OrgSigningKeys {
  readonly #settings: KeySettings
  readonly #legacyDir: string | undefined
  readonly #cache = new Map<string, { keys: OrgKeys; key: KeyObject; checked: number }>()
  readonly #loading = new Map<string, Promise<{ keys: OrgKeys; key: KeyObject }>>()

  constructor (settings: KeySettings, legacyDir?: string) {
    this.#settings = settings
    this.#legacyDir = legacyDir
  }

  #newKey (): StoredKey {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    return {
      keyId: randomBytes(6).toString('hex'),
      privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      created: new Date().toISOString()
    }
  }

  static #name (orgId: string, generation: number): string {
    return `signing-key/${orgId}/${generation}`
  }

  async #generation (orgId: string, n: number): Promise<StoredKey | undefined> {
    const v = await this.#settings.get(OrgSigningKeys.#name(orgId, n))
    return v === undefined ? undefined : (JSON.parse(v) as StoredKey)
  }

  async #load (orgId: string): Promise<{ keys: OrgKeys; key: KeyObject }> {
    const hit = this.#cache.get(orgId)
    if (hit !== undefined && Date.now() - hit.checked < RECHECK_MS) return hit
    // Concurrent first uses of an org (a burst of enrollments) share one read.
    let loading = this.#loading.get(orgId)
    if (loading === undefined) {
      loading = this.#read(orgId, hit?.keys.generation ?? 1).finally(() => {
        this.#loading.delete(orgId)
      })
      this.#loading.set(orgId, loading)
    }
    return await loading
  }

  /** The newest generation from `from` on (creating generation 1 if the org has none). */
  async #read (orgId: string, from: number): Promise<{ keys: OrgKeys; key: KeyObject }> {
    let n = from
    let current = await this.#generation(orgId, n)
    if (current === undefined && n === 1) {
      current = await this.#put(orgId, 1, (await this.#legacy(orgId)) ?? this.#newKey())
    }
    for (;;) {
      const next = await this.#generation(orgId, n + 1)
      if (next === undefined) break
      n++
      current = next
    }
    if (current === undefined) throw new ValidationError(`Signing key generation ${n} of ${orgId} is missing`)
    const previous: StoredKey[] = []
    for (let g = n - 1; g >= 1 && previous.length < KEEP_PREVIOUS; g--) {
      const k = await this.#generation(orgId, g)
      if (k !== undefined) previous.push(k)
    }
    const key = createPrivateKey(current.privatePem)
    const entry = { keys: { generation: n, current, previous }, key, checked: Date.now() }
    this.#cache.set(orgId, entry)
    return entry
  }

  async #put (orgId: string, generation: number, k: StoredKey): Promise<StoredKey> {
    const won = await this.#settings.putIfAbsent(OrgSigningKeys.#name(orgId, generation), JSON.stringify(k))
    return JSON.parse(won) as StoredKey
  }

  async #legacy (orgId: string): Promise<StoredKey | undefined> {
    if (this.#legacyDir === undefined) return undefined
    try {
      return (JSON.parse(await readFile(path.join(this.#legacyDir, `${orgId}.json`), 'utf8')) as { current: StoredKey }).current
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async sign (orgId: string, payload: unknown): Promise<Signature> {
    const { keys, key } = await this.#load(orgId)
    return {
      keyId: keys.current.keyId,
      value: sign(null, Buffer.from(canonical(payload)), key).toString('base64')
    }
  }

  /** The current key and, after a rotation, its trust statement signed by the previous key. */
  async currentTrust (orgId: string): Promise<{ publicKey: string; trustSig?: Signature }> {
    const { keys } = await this.#load(orgId)
    return {
      publicKey: `${keys.current.keyId}:${keys.current.publicKey}`,
      ...(keys.current.trustSig === undefined ? {} : { trustSig: keys.current.trustSig })
    }
  }

  /** `keyId:base64` of the current key (what an ESS is enrolled with). */
  async publicKey (orgId: string): Promise<string> {
    const { keys } = await this.#load(orgId)
    return `${keys.current.keyId}:${keys.current.publicKey}`
  }

  async list (
    orgId: string
  ): Promise<Array<{ keyId: string; publicKey: string; created: string; current: boolean }>> {
    const { keys } = await this.#load(orgId)
    return [keys.current, ...keys.previous].map((k) => ({
      keyId: k.keyId,
      publicKey: `${k.keyId}:${k.publicKey}`,
      created: k.created,
      current: k === keys.current
    }))
  }

  /**
   * Makes a new current key. Returns its public key and a trust statement for it signed by the
   * key it replaces, so edges that trust the old key can trust the new one without a restart.
   * Two instances rotating at once: the first write wins and both return that key.
   */
  async rotate (orgId: string): Promise<{ publicKey: string; trustSig: Signature }> {
    this.#cache.delete(orgId)
    const { keys, key } = await this.#load(orgId)
    const next = this.#newKey()
    const publicKey = `${next.keyId}:${next.publicKey}`
    const trustSig = {
      keyId: keys.current.keyId,
      value: sign(null, Buffer.from(canonical(trustStatement(orgId, publicKey))), key).toString('base64')
    }
    const won = await this.#put(orgId, keys.generation + 1, { ...next, trustSig })
    this.#cache.delete(orgId)
    if (won.trustSig === undefined) throw new ValidationError('A rotated key has no trust statement')
    return { publicKey: `${won.keyId}:${won.publicKey}`, trustSig: won.trustSig }
  }
}

/** What a key rotation signs: "trust this public key for this org". */
export function trustStatement (orgId: string, publicKey: string): Record<string, string> {
  return { kind: 'trust', orgId, publicKey }
}
