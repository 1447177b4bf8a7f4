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
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
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
interface OrgKeyFile {
  current: StoredKey
  previous: StoredKey[]
}

/** Org signing keys in files (0600) under `dir`; share the folder between CSS replicas. */
export class OrgSigningKeys {
  readonly #dir: string
  readonly #cache = new Map<string, { file: OrgKeyFile; key: KeyObject }>()
  readonly #loading = new Map<string, Promise<{ file: OrgKeyFile; key: KeyObject }>>()

  constructor (dir: string) {
    this.#dir = dir
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

  async #save (orgId: string, f: OrgKeyFile): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const file = path.join(this.#dir, `${orgId}.json`)
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`
    await writeFile(tmp, JSON.stringify(f, null, 2), { mode: 0o600 })
    await rename(tmp, file)
    this.#cache.set(orgId, { file: f, key: createPrivateKey(f.current.privatePem) })
  }

  async #load (orgId: string): Promise<{ file: OrgKeyFile; key: KeyObject }> {
    const hit = this.#cache.get(orgId)
    if (hit !== undefined) return hit
    // Concurrent first uses of an org (a burst of enrollments) must all see one key, not race to make several.
    let loading = this.#loading.get(orgId)
    if (loading === undefined) {
      loading = this.#read(orgId).finally(() => {
        this.#loading.delete(orgId)
      })
      this.#loading.set(orgId, loading)
    }
    return await loading
  }

  async #read (orgId: string): Promise<{ file: OrgKeyFile; key: KeyObject }> {
    try {
      const f = JSON.parse(await readFile(path.join(this.#dir, `${orgId}.json`), 'utf8')) as OrgKeyFile
      const entry = { file: f, key: createPrivateKey(f.current.privatePem) }
      this.#cache.set(orgId, entry)
      return entry
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      await this.#save(orgId, { current: this.#newKey(), previous: [] })
      return this.#cache.get(orgId) as { file: OrgKeyFile; key: KeyObject }
    }
  }

  async sign (orgId: string, payload: unknown): Promise<Signature> {
    const { file, key } = await this.#load(orgId)
    return {
      keyId: file.current.keyId,
      value: sign(null, Buffer.from(canonical(payload)), key).toString('base64')
    }
  }

  /** The current key and, after a rotation, its trust statement signed by the previous key. */
  async currentTrust (orgId: string): Promise<{ publicKey: string; trustSig?: Signature }> {
    const { file } = await this.#load(orgId)
    return {
      publicKey: `${file.current.keyId}:${file.current.publicKey}`,
      ...(file.current.trustSig === undefined ? {} : { trustSig: file.current.trustSig })
    }
  }

  /** `keyId:base64` of the current key (what an ESS is enrolled with). */
  async publicKey (orgId: string): Promise<string> {
    const { file } = await this.#load(orgId)
    return `${file.current.keyId}:${file.current.publicKey}`
  }

  async list (
    orgId: string
  ): Promise<Array<{ keyId: string; publicKey: string; created: string; current: boolean }>> {
    const { file } = await this.#load(orgId)
    return [file.current, ...file.previous].map((k) => ({
      keyId: k.keyId,
      publicKey: `${k.keyId}:${k.publicKey}`,
      created: k.created,
      current: k === file.current
    }))
  }

  /**
   * Makes a new current key. Returns its public key and a trust statement for it signed by the
   * key it replaces, so edges that trust the old key can trust the new one without a restart.
   */
  async rotate (orgId: string): Promise<{ publicKey: string; trustSig: Signature }> {
    const { file, key } = await this.#load(orgId)
    const next = this.#newKey()
    const publicKey = `${next.keyId}:${next.publicKey}`
    const trustSig = {
      keyId: file.current.keyId,
      value: sign(null, Buffer.from(canonical(trustStatement(orgId, publicKey))), key).toString('base64')
    }
    await this.#save(orgId, {
      current: { ...next, trustSig },
      previous: [file.current, ...file.previous].slice(0, 5)
    })
    return { publicKey, trustSig }
  }
}

/** What a key rotation signs: "trust this public key for this org". */
export function trustStatement (orgId: string, publicKey: string): Record<string, string> {
  return { kind: 'trust', orgId, publicKey }
}
