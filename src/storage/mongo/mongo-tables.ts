/** Mongo collections for deliveries, nodes, users/ACLs and the audit log. */
import type { AnyBulkWriteOperation, Collection, Db, Filter } from 'mongodb'
import type {
  WebhookRecord,
  AclEntry,
  AclKind,
  AuditEntry,
  DeliveryRecord,
  DeliveryUpdate,
  DestinationKey,
  NodeRecord,
  ObjectKey,
  Page,
  UserRecord
} from '../../common/model.js'
import { StorageError } from '../../common/errors.js'
import { decodeCursor, deliveryId, encodeCursor, joinKey, nodeId, pageLimit } from '../common.js'
import { applyDelivery } from '../memory/delivery-table.js'
import { aclId } from '../memory/user-table.js'
import type {
  AuditLog,
  DeliveryStore,
  NodeQuery,
  NodeStore,
  NodeTouch,
  UserStore,
  WebhookStore
} from '../types.js'

type WithId<T> = T & { _id: string }
interface DeliveryDoc extends DeliveryRecord {
  _id: string
  skObj: string
  skDest: string
}
interface NodeDoc extends NodeRecord {
  _id: string
  sk: string
}

/**
 * FerretDB 1.x (SQLite) never answers a write batch of 100 or more operations, so batches are sent
 * in slices of BATCH. Write errors come back with indexes into the whole list.
 */
const BATCH = 64

async function bulkWriteSliced<T extends { _id: string }> (
  c: Collection<T>,
  ops: Array<AnyBulkWriteOperation<T>>,
  ordered: boolean
): Promise<{ counted: number; writeErrors: Array<{ index: number; code: number }> }> {
  let counted = 0
  const writeErrors: Array<{ index: number; code: number }> = []
  for (let i = 0; i < ops.length; i += BATCH) {
    try {
      const r = await c.bulkWrite(ops.slice(i, i + BATCH), { ordered })
      counted += r.matchedCount + r.insertedCount + r.upsertedCount
    } catch (err) {
      const we = (err as { writeErrors?: Array<{ index: number; code: number }> }).writeErrors
      if (we === undefined || ordered) throw err
      for (const w of we) writeErrors.push({ index: w.index + i, code: w.code })
    }
  }
  return { counted, writeErrors }
}

/** Strips `_id` and our sort-key fields from a document. */
function without<R> (doc: object, ...extra: string[]): R {
  const out: Record<string, unknown> = { ...doc }
  for (const k of ['_id', ...extra]) out[k] = undefined
  for (const k of ['_id', ...extra]) Reflect.deleteProperty(out, k)
  return out as R
}

async function pageOf<D extends { _id: string }> (
  coll: Collection<D>,
  filter: Filter<D>,
  skField: string,
  opts: { limit?: number; cursor?: string }
): Promise<{ docs: D[]; next?: string }> {
  const after = decodeCursor(opts.cursor)
  const limit = pageLimit(opts.limit)
  const f: Record<string, unknown> = { ...filter }
  if (after !== undefined) f[skField] = { $gt: after }
  const docs = (await coll
    .find(f as Filter<D>)
    .sort({ [skField]: 1 })
    .limit(limit + 1)
    .toArray()) as D[]
  const items = docs.slice(0, limit)
  const last = items.at(-1) as Record<string, unknown> | undefined
  return docs.length > limit && last !== undefined
    ? { docs: items, next: encodeCursor(String(last[skField])) }
    : { docs: items }
}

/** Lookups in flight at once when reading a batch by `_id` (the driver pools 100 connections). */
const POINT_READS_AT_ONCE = 32

export class MongoDeliveryStore implements DeliveryStore {
  readonly #c: Collection<DeliveryDoc>
  /**
   * This process's delivery writes, one batch at a time. The compare-and-set below keeps
   * concurrent writers from moving a record backwards on MongoDB; FerretDB 1.x does not apply a
   * replace's filter atomically under concurrent writers (a parallel-batch conformance test lost a
   * forward step about one run in five), so writers in one process do not race at all.
   */
  #turn: Promise<void> = Promise.resolve()
  readonly #pointReads: boolean
  /** `pointReads`: read a batch by one `_id` lookup each (FerretDB), not one `$in` query. */
  constructor (db: Db, pointReads = false) {
    this.#c = db.collection<DeliveryDoc>('deliveries')
    this.#pointReads = pointReads
  }

  /**
   * The stored records of `ids`. FerretDB 1.x pushes `_id` equality down to PostgreSQL but not
   * `$in`, which scans the whole collection: a 1,000-edge fan-out crawled at a few deliveries a
   * second with FerretDB at full CPU. Lookups by exact `_id` are served from the primary index.
   */
  async #byIds (ids: string[], projection?: Record<string, 1>): Promise<DeliveryDoc[]> {
    const opts = projection === undefined ? {} : { projection }
    if (!this.#pointReads) return await this.#c.find({ _id: { $in: ids } }, opts).toArray()
    const out: DeliveryDoc[] = []
    for (let i = 0; i < ids.length; i += POINT_READS_AT_ONCE) {
      const found = await Promise.all(
        ids.slice(i, i + POINT_READS_AT_ONCE).map(async (id) => await this.#c.findOne({ _id: id }, opts))
      )
      for (const d of found) if (d !== null) out.push(d)
    }
    return out
  }

  async init (): Promise<void> {
    await this.#c.createIndex({ orgId: 1, objectType: 1, objectId: 1, skDest: 1 })
    await this.#c.createIndex({ orgId: 1, destinationType: 1, destinationId: 1, skObj: 1 })
  }

  async upsertMany (updates: readonly DeliveryUpdate[]): Promise<void> {
    const run = this.#turn.then(async () => {
      await this.#upsertMany(updates)
    })
    this.#turn = run.catch(() => {})
    await run
  }

  async #upsertMany (updates: readonly DeliveryUpdate[]): Promise<void> {
    // Group by record first so several updates of one record in a batch apply in order.
    let pending = new Map<string, DeliveryUpdate[]>()
    for (const u of updates) {
      const id = deliveryId(u, u)
      const list = pending.get(id)
      if (list === undefined) pending.set(id, [u])
      else list.push(u)
    }
    // Compare-and-set on the stored (instanceId, status); records that lost a race are retried.
    for (let attempt = 0; attempt < 20 && pending.size > 0; attempt++) {
      const ids = [...pending.keys()]
      const existing = new Map<string, DeliveryDoc>()
      for (const d of await this.#byIds(ids)) existing.set(d._id, d)
      const ops: AnyBulkWriteOperation<DeliveryDoc>[] = []
      const opIds: string[] = []
      for (const [id, list] of pending) {
        const cur = existing.get(id)
        let rec: DeliveryRecord | undefined =
          cur === undefined ? undefined : without<DeliveryRecord>(cur, 'skObj', 'skDest')
        let changed = false
        for (const u of list) {
          const next = applyDelivery(rec, u)
          if (next !== undefined) {
            rec = next
            changed = true
          }
        }
        if (!changed || rec === undefined) continue
        const doc: DeliveryDoc = {
          _id: id,
          skObj: joinKey(rec.objectType, rec.objectId),
          skDest: joinKey(rec.destinationType, rec.destinationId),
          ...rec
        }
        if (cur === undefined) ops.push({ insertOne: { document: doc } })
        else {
          ops.push({
            replaceOne: {
              filter: { _id: id, instanceId: cur.instanceId, status: cur.status, updatedAt: cur.updatedAt },
              replacement: doc
            }
          })
        }
        opIds.push(id)
      }
      if (ops.length === 0) return
      const retry = new Map<string, DeliveryUpdate[]>()
      const res = await bulkWriteSliced(this.#c, ops, false).catch((err: unknown) => {
        throw new StorageError('Cannot store delivery records', { cause: err })
      })
      if (res.writeErrors.some((w) => w.code !== 11000)) {
        throw new StorageError(`Cannot store delivery records (code ${res.writeErrors[0]?.code ?? 0})`)
      }
      // Inserts that lost a race (duplicate key) are retried against what is stored now.
      for (const w of res.writeErrors) {
        const id = opIds[w.index] as string
        retry.set(id, pending.get(id) ?? [])
      }
      if (res.counted + res.writeErrors.length < ops.length) {
        // Some compare-and-set replaces missed: re-check those whose stored doc is not what we wrote.
        const after = await this.#byIds(opIds, { _id: 1, updatedAt: 1, status: 1, instanceId: 1 })
        const byId = new Map(after.map((d) => [d._id, d]))
        ops.forEach((op, i) => {
          const id = opIds[i] as string
          const want = 'replaceOne' in op ? op.replaceOne.replacement : undefined
          const got = byId.get(id)
          if (
            want !== undefined &&
            (got === undefined ||
              got.updatedAt !== want.updatedAt ||
              got.status !== want.status ||
              got.instanceId !== want.instanceId)
          ) {
            retry.set(id, pending.get(id) ?? [])
          }
        })
      }
      pending = retry
    }
    if (pending.size > 0) throw new StorageError('Delivery records kept changing under concurrent writers')
  }

  async get (obj: ObjectKey, dest: DestinationKey): Promise<DeliveryRecord | undefined> {
    const d = await this.#c.findOne({ _id: deliveryId(obj, dest) })
    return d === null ? undefined : without<DeliveryRecord>(d, 'skObj', 'skDest')
  }

  async listByObject (
    obj: ObjectKey,
    opts: { limit?: number; cursor?: string } = {}
  ): Promise<Page<DeliveryRecord>> {
    const { docs, next } = await pageOf(
      this.#c,
      { orgId: obj.orgId, objectType: obj.objectType, objectId: obj.objectId },
      'skDest',
      opts
    )
    const items = docs.map((d) => without<DeliveryRecord>(d, 'skObj', 'skDest'))
    return next === undefined ? { items } : { items, next }
  }

  async listByDestination (
    dest: DestinationKey,
    opts: { limit?: number; cursor?: string } = {}
  ): Promise<Page<DeliveryRecord>> {
    const { docs, next } = await pageOf(
      this.#c,
      { orgId: dest.orgId, destinationType: dest.destinationType, destinationId: dest.destinationId },
      'skObj',
      opts
    )
    const items = docs.map((d) => without<DeliveryRecord>(d, 'skObj', 'skDest'))
    return next === undefined ? { items } : { items, next }
  }

  async removeByObject (obj: ObjectKey): Promise<void> {
    await this.#c.deleteMany({ orgId: obj.orgId, objectType: obj.objectType, objectId: obj.objectId })
  }

  async removeByDestination (dest: DestinationKey): Promise<void> {
    await this.#c.deleteMany({
      orgId: dest.orgId,
      destinationType: dest.destinationType,
      destinationId: dest.destinationId
    })
  }
}

export class MongoNodeStore implements NodeStore {
  readonly #c: Collection<NodeDoc>
  constructor (db: Db) {
    this.#c = db.collection<NodeDoc>('nodes')
  }

  async init (): Promise<void> {
    await this.#c.createIndex({ orgId: 1, sk: 1 })
  }

  async upsert (node: NodeRecord): Promise<void> {
    const id = nodeId(node)
    await this.#c.replaceOne(
      { _id: id },
      { sk: joinKey(node.destinationType, node.destinationId), ...node },
      { upsert: true }
    )
  }

  async touchMany (updates: readonly NodeTouch[]): Promise<void> {
    if (updates.length === 0) return
    const r = await bulkWriteSliced(
      this.#c,
      updates.map((u) => ({
        updateOne: {
          filter: { _id: nodeId(u.node) },
          update: {
            $set: {
              lastHeartbeat: u.at,
              online: u.online,
              ...(u.status === undefined ? {} : { status: u.status })
            }
          }
        }
      })),
      false
    )
    if (r.writeErrors.length > 0) throw new StorageError('Cannot record node heartbeats')
  }

  async get (key: DestinationKey): Promise<NodeRecord | undefined> {
    const d = await this.#c.findOne({ _id: nodeId(key) })
    return d === null ? undefined : without<NodeRecord>(d, 'sk')
  }

  async list (q: NodeQuery): Promise<Page<NodeRecord>> {
    const filter: Record<string, unknown> = { orgId: q.orgId }
    if (q.destinationType !== undefined) filter.destinationType = q.destinationType
    for (const [k, v] of Object.entries(q.properties ?? {})) filter[`properties.${k}`] = v
    const { docs, next } = await pageOf(this.#c, filter as Filter<NodeDoc>, 'sk', q)
    const items = docs.map((d) => without<NodeRecord>(d, 'sk'))
    return next === undefined ? { items } : { items, next }
  }

  async remove (key: DestinationKey): Promise<boolean> {
    return (await this.#c.deleteOne({ _id: nodeId(key) })).deletedCount > 0
  }
}

export class MongoUserStore implements UserStore {
  readonly #users: Collection<WithId<UserRecord>>
  readonly #acls: Collection<WithId<AclEntry>>
  constructor (db: Db) {
    this.#users = db.collection<WithId<UserRecord>>('users')
    this.#acls = db.collection<WithId<AclEntry>>('acls')
  }

  async init (): Promise<void> {
    await this.#users.createIndex({ orgId: 1 })
    await this.#acls.createIndex({ orgId: 1, kind: 1, key: 1 })
  }

  async put (user: UserRecord): Promise<void> {
    await this.#users.replaceOne({ _id: user.appKey }, { ...user }, { upsert: true })
  }

  async get (appKey: string): Promise<UserRecord | undefined> {
    const d = await this.#users.findOne({ _id: appKey })
    return d === null ? undefined : without<UserRecord>(d)
  }

  async list (orgId?: string): Promise<UserRecord[]> {
    const docs = await this.#users
      .find(orgId === undefined ? {} : { orgId })
      .sort({ _id: 1 })
      .toArray()
    return docs.map((d) => without<UserRecord>(d))
  }

  async remove (appKey: string): Promise<boolean> {
    return (await this.#users.deleteOne({ _id: appKey })).deletedCount > 0
  }

  async putAcl (entries: readonly AclEntry[]): Promise<void> {
    if (entries.length === 0) return
    await bulkWriteSliced(
      this.#acls,
      entries.map((e) => ({
        replaceOne: { filter: { _id: aclId(e) }, replacement: { ...e }, upsert: true }
      })),
      true
    )
  }

  async removeAcl (
    orgId: string,
    kind: AclKind,
    key: string,
    userType: AclEntry['userType'],
    username: string
  ): Promise<boolean> {
    return (
      (await this.#acls.deleteOne({ _id: aclId({ orgId, kind, key, userType, username }) })).deletedCount > 0
    )
  }

  async listAcl (orgId: string, kind: AclKind, key?: string): Promise<AclEntry[]> {
    const filter: Filter<WithId<AclEntry>> = { orgId, kind }
    if (key !== undefined) filter.key = key
    const docs = await this.#acls.find(filter).sort({ _id: 1 }).toArray()
    return docs.map((d) => without<AclEntry>(d))
  }
}

interface AuditDoc extends AuditEntry {
  _id: string
}
export class MongoAuditLog implements AuditLog {
  readonly #c: Collection<AuditDoc>
  #n = 0
  constructor (db: Db) {
    this.#c = db.collection<AuditDoc>('audit')
  }

  async init (): Promise<void> {
    await this.#c.createIndex({ orgId: 1, at: 1 })
  }

  async append (entry: AuditEntry): Promise<void> {
    // at + process-local counter + random keeps ids unique and roughly ordered across processes.
    const id = `${entry.at}#${String(this.#n++).padStart(8, '0')}#${Math.random().toString(36).slice(2, 8)}`
    await this.#c.insertOne({ _id: id, ...entry })
  }

  async list (q: { orgId?: string; since?: string; limit?: number }): Promise<AuditEntry[]> {
    const filter: Filter<AuditDoc> = {}
    if (q.orgId !== undefined) filter.orgId = q.orgId
    if (q.since !== undefined) filter.at = { $gte: q.since }
    const docs = await this.#c
      .find(filter)
      .sort({ _id: 1 })
      .limit(q.limit ?? 1000)
      .toArray()
    return docs.map((d) => without<AuditEntry>(d))
  }
}

export class MongoWebhookStore implements WebhookStore {
  readonly #c: Collection<WithId<WebhookRecord>>
  constructor (db: Db) {
    this.#c = db.collection<WithId<WebhookRecord>>('webhooks')
  }

  async init (): Promise<void> {
    await this.#c.createIndex({ orgId: 1, objectType: 1 })
  }

  async put (hook: WebhookRecord): Promise<void> {
    const id = joinKey(hook.orgId, hook.objectType, hook.url)
    try {
      await this.#c.insertOne({ _id: id, ...hook })
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) {
        throw new StorageError('Cannot store webhook', { cause: err })
      }
    }
  }

  async remove (orgId: string, objectType: string, url: string): Promise<boolean> {
    return (await this.#c.deleteOne({ _id: joinKey(orgId, objectType, url) })).deletedCount > 0
  }

  async list (orgId: string, objectType: string): Promise<WebhookRecord[]> {
    const docs = await this.#c.find({ orgId, objectType }).sort({ url: 1 }).toArray()
    return docs.map((d) => without<WebhookRecord>(d))
  }
}
