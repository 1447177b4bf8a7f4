import {
  deliveryMovesForward,
  type DeliveryRecord,
  type DeliveryUpdate,
  type DestinationKey,
  type ObjectKey,
  type Page
} from '../../common/model.js'
import { decodeCursor, deliveryId, encodeCursor, joinKey, nowIso, pageLimit } from '../common.js'
import type { DeliveryStore } from '../types.js'

export type DeliveryTableData = Record<string, DeliveryRecord>

/** Applies one update to a record, or returns undefined when it would move it backwards. */
export function applyDelivery (
  current: DeliveryRecord | undefined,
  u: DeliveryUpdate
): DeliveryRecord | undefined {
  if (!deliveryMovesForward(current, u)) return undefined
  const at = u.at ?? nowIso()
  const sameInstance = current !== undefined && current.instanceId === u.instanceId
  const times = sameInstance ? { ...current.times } : {}
  times[u.status] ??= at
  const next: DeliveryRecord = {
    orgId: u.orgId,
    objectType: u.objectType,
    objectId: u.objectId,
    destinationType: u.destinationType,
    destinationId: u.destinationId,
    instanceId: u.instanceId,
    status: u.status,
    times,
    updatedAt: at
  }
  if (u.detail !== undefined) next.detail = u.detail
  if (u.message !== undefined) next.message = u.message
  if (u.bytes !== undefined) next.bytes = u.bytes
  return next
}

function objKey (r: DeliveryRecord): ObjectKey {
  return { orgId: r.orgId, objectType: r.objectType, objectId: r.objectId }
}
const byDest = (r: DeliveryRecord): string => joinKey(r.destinationType, r.destinationId)
const byObject = (r: DeliveryRecord): string => joinKey(r.objectType, r.objectId)

function page (
  records: DeliveryRecord[],
  sortKey: (r: DeliveryRecord) => string,
  opts: { limit?: number; cursor?: string } = {}
): Page<DeliveryRecord> {
  const after = decodeCursor(opts.cursor)
  const limit = pageLimit(opts.limit)
  const sorted = records
    .filter((r) => after === undefined || sortKey(r) > after)
    .sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1))
  const items = sorted.slice(0, limit).map((r) => structuredClone(r))
  const last = items.at(-1)
  return sorted.length > limit && last !== undefined
    ? { items, next: encodeCursor(sortKey(last)) }
    : { items }
}

export class DeliveryTable implements DeliveryStore {
  readonly #data: () => DeliveryTableData
  readonly #commit: (ids: string[]) => Promise<void>
  /** `commit` makes the named records durable (the local store journals just those). */
  constructor (data: () => DeliveryTableData, commit: (ids: string[]) => Promise<void>) {
    this.#data = data
    this.#commit = commit
  }

  async upsertMany (updates: readonly DeliveryUpdate[]): Promise<void> {
    const data = this.#data()
    const before = new Map<string, DeliveryRecord | undefined>()
    for (const u of updates) {
      const id = deliveryId(u, u)
      const next = applyDelivery(data[id], u)
      if (next === undefined) continue
      if (!before.has(id)) before.set(id, data[id])
      data[id] = next
    }
    if (before.size === 0) return
    const mine = new Map([...before.keys()].map((id) => [id, data[id]]))
    try {
      await this.#commit([...before.keys()])
    } catch (err) {
      // All or nothing: a change whose commit failed is not shown (unless a later write replaced it).
      for (const [id, rec] of before) {
        if (data[id] !== mine.get(id)) continue
        if (rec === undefined) Reflect.deleteProperty(data, id)
        else data[id] = rec
      }
      throw err
    }
  }

  async get (obj: ObjectKey, dest: DestinationKey): Promise<DeliveryRecord | undefined> {
    const r = this.#data()[deliveryId(obj, dest)]
    return r === undefined ? undefined : structuredClone(r)
  }

  async listByObject (
    obj: ObjectKey,
    opts?: { limit?: number; cursor?: string }
  ): Promise<Page<DeliveryRecord>> {
    const recs = Object.values(this.#data()).filter(
      (r) => r.orgId === obj.orgId && r.objectType === obj.objectType && r.objectId === obj.objectId
    )
    return page(recs, byDest, opts)
  }

  async listByDestination (
    dest: DestinationKey,
    opts?: { limit?: number; cursor?: string }
  ): Promise<Page<DeliveryRecord>> {
    const recs = Object.values(this.#data()).filter(
      (r) =>
        r.orgId === dest.orgId &&
        r.destinationType === dest.destinationType &&
        r.destinationId === dest.destinationId
    )
    return page(recs, byObject, opts)
  }

  async removeByObject (obj: ObjectKey): Promise<void> {
    await this.#removeWhere((r) => {
      const k = objKey(r)
      return k.orgId === obj.orgId && k.objectType === obj.objectType && k.objectId === obj.objectId
    })
  }

  async removeByDestination (dest: DestinationKey): Promise<void> {
    await this.#removeWhere(
      (r) =>
        r.orgId === dest.orgId &&
        r.destinationType === dest.destinationType &&
        r.destinationId === dest.destinationId
    )
  }

  async #removeWhere (pred: (r: DeliveryRecord) => boolean): Promise<void> {
    const data = this.#data()
    const removed: string[] = []
    for (const [id, r] of Object.entries(data)) {
      if (pred(r)) {
        delete data[id]
        removed.push(id)
      }
    }
    if (removed.length > 0) await this.#commit(removed)
  }
}
