/**
 * Leases and settings on the mongo store. A lease term is its own document (`name#version`):
 * taking a term is an insert, which the unique `_id` makes atomic on MongoDB and on FerretDB alike
 * (FerretDB 1.x does not apply an update's filter atomically under concurrent writers).
 */
import type { Collection, Db } from 'mongodb'
import { StorageError } from '../../common/errors.js'
import type { Lease, LeaseStore, SettingStore } from '../types.js'

type LeaseDoc = Lease & { _id: string }
/** Terms kept behind the newest (for the record; older ones are removed as new terms begin). */
const KEEP_TERMS = 10

const DUPLICATE_KEY = 11000

export class MongoLeaseStore implements LeaseStore {
  readonly #c: Collection<LeaseDoc>
  constructor (db: Db) {
    this.#c = db.collection<LeaseDoc>('leases')
  }

  async init (): Promise<void> {
    await this.#c.createIndex({ name: 1, version: -1 })
  }

  async current (name: string): Promise<Lease | undefined> {
    const d = await this.#c.find({ name }).sort({ version: -1 }).limit(1).next()
    return d === null ? undefined : { name: d.name, version: d.version, holder: d.holder, expiresAt: d.expiresAt }
  }

  async claim (lease: Lease): Promise<boolean> {
    try {
      await this.#c.insertOne({ _id: `${lease.name}#${lease.version}`, ...lease })
    } catch (err) {
      if ((err as { code?: number }).code === DUPLICATE_KEY) return false
      throw new StorageError('Cannot claim the lease', { cause: err })
    }
    await this.#c.deleteMany({ name: lease.name, version: { $lt: lease.version - KEEP_TERMS } })
    return true
  }

  async renew (lease: Lease): Promise<boolean> {
    const r = await this.#c.updateOne(
      { _id: `${lease.name}#${lease.version}`, holder: lease.holder },
      { $set: { expiresAt: lease.expiresAt } }
    )
    if (r.matchedCount === 0) return false
    // A newer term means someone took over (our renewal came too late): we are not the holder.
    return (await this.current(lease.name))?.version === lease.version
  }
}

type SettingDoc = { _id: string; value: string }

export class MongoSettingStore implements SettingStore {
  readonly #c: Collection<SettingDoc>
  constructor (db: Db) {
    this.#c = db.collection<SettingDoc>('settings')
  }

  async get (name: string): Promise<string | undefined> {
    return (await this.#c.findOne({ _id: name }))?.value
  }

  async putIfAbsent (name: string, value: string): Promise<string> {
    try {
      await this.#c.insertOne({ _id: name, value })
      return value
    } catch (err) {
      if ((err as { code?: number }).code !== DUPLICATE_KEY) throw new StorageError('Cannot store a setting', { cause: err })
    }
    const won = await this.get(name)
    if (won === undefined) throw new StorageError(`Setting ${name} vanished while being stored`)
    return won
  }

  async set (name: string, value: string): Promise<void> {
    await this.#c.replaceOne({ _id: name }, { value }, { upsert: true })
  }

  async list (prefix: string): Promise<Array<[string, string]>> {
    // An anchored regex on _id: a range scan of the index.
    const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    const docs = await this.#c.find({ _id: { $regex: `^${escaped}` } }).sort({ _id: 1 }).toArray()
    return docs.map((d) => [d._id, d.value])
  }

  async remove (name: string): Promise<void> {
    await this.#c.deleteOne({ _id: name })
  }
}
