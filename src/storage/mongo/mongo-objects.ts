import type { Collection, Db, Filter } from 'mongodb'
import type { ObjectKey, ObjectStatus, Page, StoredObject } from '../../common/model.js'
import { StorageError } from '../../common/errors.js'
import {
  decodeCursor,
  encodeCursor,
  joinKey,
  nowIso,
  objectId,
  pageLimit,
  preconditionFailed,
  staleInstance
} from '../common.js'
import { dataIdFor } from '../memory/object-table.js'
import {
  retentionFor,
  type ObjectDraftWithState,
  type ObjectQuery,
  type ObjectStore,
  type PutObjectOptions,
  type StoreOptions
} from '../types.js'

interface ObjectDoc extends StoredObject {
  _id: string
  sk: string
}
interface HistoryDoc {
  _id: string
  oid: string
  instanceID: number
  obj: StoredObject
  next?: ObjectDoc
  claimedAt?: number
}
interface TombstoneDoc {
  _id: string
  last: number
}

const MAX_ATTEMPTS = 200
/** A claim older than this whose object was never updated belongs to a writer that died. */
const CLAIM_STALE_MS = 10_000

/** Jittered backoff after losing a race, so many writers on one object make progress. */
async function backoff (attempt: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(2 ** attempt, 100)))
}

function strip (doc: ObjectDoc | StoredObject): StoredObject {
  const out: StoredObject = { key: doc.key, meta: doc.meta, status: doc.status }
  if (doc.dataRef !== undefined && doc.dataRef !== null) out.dataRef = doc.dataRef
  if (doc.policyReceived === true) out.policyReceived = true
  return out
}

export class MongoObjectStore implements ObjectStore {
  readonly #objects: Collection<ObjectDoc>
  readonly #history: Collection<HistoryDoc>
  readonly #tombstones: Collection<TombstoneDoc>
  readonly #opts: StoreOptions
  readonly #release: (refs: string[]) => Promise<void>

  constructor (db: Db, opts: StoreOptions, release: (refs: string[]) => Promise<void>) {
    this.#objects = db.collection<ObjectDoc>('objects')
    this.#history = db.collection<HistoryDoc>('objectHistory')
    this.#tombstones = db.collection<TombstoneDoc>('objectTombstones')
    this.#opts = opts
    this.#release = release
  }

  async init (): Promise<void> {
    await this.#objects.createIndex({ 'key.orgId': 1, sk: 1 })
    await this.#objects.createIndex({ 'key.orgId': 1, 'meta.lastUpdate': 1 })
    await this.#history.createIndex({ oid: 1, instanceID: -1 })
  }

  async put (
    key: ObjectKey,
    build: (current: StoredObject | undefined) => ObjectDraftWithState,
    opts: PutObjectOptions = {}
  ): Promise<StoredObject> {
    const id = objectId(key)
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const curDoc = await this.#objects.findOne({ _id: id })
      const current = curDoc === null ? undefined : strip(curDoc)
      const currentInstance = current?.meta.instanceID ?? 0
      if (opts.expectInstanceId !== undefined && opts.expectInstanceId !== currentInstance) {
        throw preconditionFailed(opts.expectInstanceId, currentInstance)
      }
      const draft = build(current === undefined ? undefined : structuredClone(current))
      // Per-object sequence: the claim below makes (object, instance) unique, and a tombstone keeps
      // it increasing across delete and re-create. No shared counter: FerretDB's $inc is not atomic.
      const base =
        current === undefined ? ((await this.#tombstones.findOne({ _id: id }))?.last ?? 0) : currentInstance
      if (opts.instanceId !== undefined && opts.instanceId <= currentInstance) {
        throw staleInstance(opts.instanceId, currentInstance)
      }
      const seq = opts.instanceId ?? base + 1
      const now = nowIso()
      const next: StoredObject = {
        key: { ...key },
        meta: {
          ...draft.meta,
          instanceID: seq,
          created: current?.meta.created ?? draft.meta.created ?? now,
          lastUpdate: now
        },
        status: draft.status
      }
      if (draft.dataRef !== undefined) next.dataRef = draft.dataRef
      next.meta.dataID = dataIdFor(draft.dataRef, current, seq)
      const doc: ObjectDoc = { _id: id, sk: joinKey(key.objectType, key.objectId), ...next }
      if (current === undefined) {
        try {
          await this.#objects.insertOne(doc)
        } catch (err) {
          if ((err as { code?: number }).code === 11000) {
            await backoff(attempt)
            continue
          } // a concurrent writer created it
          throw new StorageError('Cannot store object', { cause: err })
        }
      } else {
        // The history document of the superseded instance doubles as the claim: its unique _id lets
        // exactly one writer supersede an instance, so writes to the object document are totally
        // ordered even on servers whose conditional updates are not isolated (FerretDB on SQLite).
        // It carries the next document, so if its owner died before finishing, a later writer
        // completes it (roll forward) once the claim is clearly stale.
        const hid = `${id}#${currentInstance}`
        try {
          await this.#history.insertOne({
            _id: hid,
            oid: id,
            instanceID: currentInstance,
            obj: current,
            next: doc,
            claimedAt: Date.now()
          })
        } catch (err) {
          if ((err as { code?: number }).code !== 11000) {
            throw new StorageError('Cannot store object history', { cause: err })
          }
          const claim = await this.#history.findOne({ _id: hid })
          if (claim?.next !== undefined && Date.now() - (claim.claimedAt ?? 0) > CLAIM_STALE_MS) {
            await this.#objects.replaceOne({ _id: id, 'meta.instanceID': currentInstance }, claim.next)
          }
          await backoff(attempt)
          continue
        }
        await this.#objects.replaceOne({ _id: id, 'meta.instanceID': currentInstance }, doc)
        await this.#history.updateOne({ _id: hid }, { $unset: { next: '' } })
        await this.#prune(id, next)
      }
      return next
    }
    throw new StorageError(`Too many concurrent writers on ${key.objectType}/${key.objectId}`)
  }

  async #prune (id: string, current: StoredObject): Promise<void> {
    const keep = retentionFor(this.#opts, current.key.objectType) - 1
    const old = await this.#history.find({ oid: id }).sort({ instanceID: -1 }).toArray()
    const kept = old.slice(0, keep)
    const dropped = old.slice(keep)
    if (dropped.length === 0) return
    await this.#history.deleteMany({ _id: { $in: dropped.map((d) => d._id) } })
    const live = new Set([current.dataRef, ...kept.map((d) => d.obj.dataRef)])
    const orphans = [...new Set(dropped.map((d) => d.obj.dataRef))].filter(
      (r): r is string => r !== undefined && r !== null && !live.has(r)
    )
    if (orphans.length > 0) await this.#release(orphans)
  }

  async setStatus (
    key: ObjectKey,
    status: ObjectStatus,
    expectInstanceId?: number
  ): Promise<StoredObject | undefined> {
    const filter: Filter<ObjectDoc> = { _id: objectId(key) }
    if (expectInstanceId !== undefined) filter['meta.instanceID'] = expectInstanceId
    const doc = await this.#objects.findOneAndUpdate(
      filter,
      { $set: { status } },
      { returnDocument: 'after' }
    )
    if (doc !== null) return strip(doc)
    if (expectInstanceId === undefined) return undefined
    const cur = await this.#objects.findOne({ _id: objectId(key) })
    if (cur === null) return undefined
    throw preconditionFailed(expectInstanceId, cur.meta.instanceID)
  }

  async markPolicyReceived (key: ObjectKey): Promise<StoredObject | undefined> {
    const doc = await this.#objects.findOneAndUpdate(
      { _id: objectId(key) },
      { $set: { policyReceived: true } },
      { returnDocument: 'after' }
    )
    return doc === null ? undefined : strip(doc)
  }

  async get (key: ObjectKey): Promise<StoredObject | undefined> {
    const doc = await this.#objects.findOne({ _id: objectId(key) })
    return doc === null ? undefined : strip(doc)
  }

  async getInstance (key: ObjectKey, instanceId: number): Promise<StoredObject | undefined> {
    const cur = await this.get(key)
    if (cur === undefined) return undefined
    if (cur.meta.instanceID === instanceId) return cur
    const h = await this.#history.findOne({ _id: `${objectId(key)}#${instanceId}` })
    return h === null ? undefined : strip(h.obj)
  }

  async history (key: ObjectKey): Promise<StoredObject[]> {
    const cur = await this.get(key)
    if (cur === undefined) return []
    const old = await this.#history
      .find({ oid: objectId(key) })
      .sort({ instanceID: -1 })
      .toArray()
    return [cur, ...old.map((h) => strip(h.obj))]
  }

  async orgs (): Promise<string[]> {
    return (await this.#objects.distinct('key.orgId')).sort()
  }

  async list (q: ObjectQuery): Promise<Page<StoredObject>> {
    const after = decodeCursor(q.cursor)
    const limit = pageLimit(q.limit)
    const filter: Filter<ObjectDoc> = { 'key.orgId': q.orgId }
    if (q.objectType !== undefined) filter['key.objectType'] = q.objectType
    if (q.statuses !== undefined) filter.status = { $in: [...q.statuses] }
    if (q.since !== undefined) filter['meta.lastUpdate'] = { $gte: q.since }
    if (q.destinationType !== undefined) filter['meta.destinationType'] = q.destinationType
    if (q.destinationId !== undefined) filter['meta.destinationID'] = q.destinationId
    if (q.deleted === true) filter['meta.deleted'] = true
    if (q.deleted === false) filter['meta.deleted'] = { $ne: true }
    if (after !== undefined) filter.sk = { $gt: after }
    const docs = await this.#objects
      .find(filter)
      .sort({ sk: 1 })
      .limit(limit + 1)
      .toArray()
    const items = docs.slice(0, limit)
    const last = items.at(-1)
    const page: Page<StoredObject> = { items: items.map(strip) }
    if (docs.length > limit && last !== undefined) page.next = encodeCursor(last.sk)
    return page
  }

  async remove (key: ObjectKey): Promise<string[]> {
    const id = objectId(key)
    const all = await this.history(key)
    if (all.length === 0) return []
    const last = Math.max(...all.map((o) => o.meta.instanceID))
    await this.#tombstones.replaceOne({ _id: id }, { last }, { upsert: true })
    await this.#objects.deleteOne({ _id: id })
    await this.#history.deleteMany({ oid: id })
    return [...new Set(all.map((o) => o.dataRef).filter((r): r is string => r !== undefined))]
  }
}
