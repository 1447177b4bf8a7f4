/**
 * The signing keys an edge trusts: the one it was enrolled with (sync.conf SigningKey) and any
 * announced on rotation in a message signed by a key already trusted (kept in trusted-keys.json).
 */
import type { KeyObject } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ConfigError, SyncErrorCode } from '../common/errors.js'
import type { ObjectMetadata } from '../common/model.js'
import { parsePublicKey, trustStatement, verifySignature, type Signature } from '../security/index.js'

export class TrustStore {
  readonly #keys = new Map<string, KeyObject>()
  readonly #learned: string[] = []
  readonly #file: string

  private constructor (file: string) {
    this.#file = file
  }

  static async open (dir: string, enrolled: string): Promise<TrustStore> {
    const t = new TrustStore(path.join(dir, 'trusted-keys.json'))
    try {
      t.#add(enrolled)
    } catch (err) {
      throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `SigningKey: ${(err as Error).message}`, {
        cause: err
      })
    }
    try {
      for (const k of JSON.parse(await readFile(t.#file, 'utf8')) as string[]) {
        t.#add(k)
        t.#learned.push(k)
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    return t
  }

  #add (text: string): void {
    const { keyId, key } = parsePublicKey(text)
    this.#keys.set(keyId, key)
  }

  verify (meta: ObjectMetadata, sig: Signature | undefined): boolean {
    return verifySignature(this.#keys, meta, sig)
  }

  /** A signed instruction other than an update (e.g. a delete). */
  verifyStatement (statement: Record<string, unknown>, sig: Signature | undefined): boolean {
    return verifySignature(this.#keys, statement, sig)
  }

  /** Adds `publicKey` if a trusted key signed the statement; false otherwise. */
  async learn (orgId: string, publicKey: string, sig: Signature): Promise<boolean> {
    if (!verifySignature(this.#keys, trustStatement(orgId, publicKey), sig)) return false
    const keyId = publicKey.split(':')[0] ?? ''
    if (this.#keys.has(keyId)) return true
    this.#add(publicKey)
    this.#learned.push(publicKey)
    await writeFile(`${this.#file}.tmp`, JSON.stringify(this.#learned), { mode: 0o600 })
    await rename(`${this.#file}.tmp`, this.#file)
    return true
  }
}
