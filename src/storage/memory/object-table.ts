/**
 * Reference logic of ObjectStore over plain JSON-able data. The memory backend uses it as is; the
 * local backend hands it lowdb's data and a `commit` that makes the change durable.
 */
import { SyncError, SyncErrorCode } from '../../common/errors.js'
import type { ObjectKey, Page, StoredObject } from '../../common/model.js'
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
import {
  retentionFor,
  type ObjectDraftWithState,
  type ObjectQuery,
  type ObjectStore,
  type PutObjectOptions,
  type StoreOptions
} from '../types.js'

export interface ObjectTableData {
  /** Highest instanceID ever assigned by this store. */
  seq: number
  current: Record<string, StoredObject>
  /** Older retained instances, newest first. */
  history: Record<string, StoredObject[]>
}

/** The id a commit names for the sequence counter (no object's id is empty). */
export const SEQ_ID = ''

/**
 * A journal record: an object's current instance (under the object's id), one older instance kept
 * (under `historyId`), or the counter (under SEQ_ID). Each instance is its own record, so a put
 * writes the new instance and the one it moved to history, not every instance kept (EMS types
 * keep all of them).
 */
export type ObjectEntry = StoredObject | { seq: number }

export function historyId (id: string, instanceId: number): string {
  return `${id}\u0002${instanceId}`
}

/** The ids a change to `id` must make durable, besides `id` itself: its history as it is now. */
function historyIds (data: ObjectTableData, id: string): string[] {
  return (data.history[id] ?? []).map((o) => historyId(id, o.meta.instanceID))
}

/** The object table seen as `id -> record`, for a journal (see storage/local/journaled-table.ts). */
export function objectEntries (data: () => ObjectTableData): {
  get: (id: string) => ObjectEntry | undefined
  set: (id: string, e: ObjectEntry | undefined) => void
  all: () => Record<string, ObjectEntry>
} {
  const split = (rid: string): [string, number] | undefined => {
    const i = rid.lastIndexOf('\u0002')
    return i < 0 ? undefined : [rid.slice(0, i), Number(rid.slice(i + 1))]
  }
  return {
    get: (rid) => {
      const d = data()
      if (rid === SEQ_ID) return { seq: d.seq }
      const h = split(rid)
      if (h === undefined) return d.current[rid]
      return d.history[h[0]]?.find((o) => o.meta.instanceID === h[1])
    },
    set: (rid, e) => {
      const d = data()
      if (e !== undefined && 'seq' in e) {
        d.seq = Math.max(d.seq, e.seq)
        return
      }
      const h = split(rid)
      if (h === undefined) {
        if (e === undefined) Reflect.deleteProperty(d.current, rid)
        else d.current[rid] = e
        return
      }
      const [id, instance] = h
      const list = (d.history[id] ?? []).filter((o) => o.meta.instanceID !== instance)
      if (e !== undefined) {
        // Newest first, as the table keeps it.
        const at = list.findIndex((o) => o.meta.instanceID < instance)
        list.splice(at < 0 ? list.length : at, 0, e)
      }
      if (list.length === 0) Reflect.deleteProperty(d.history, id)
      else d.history[id] = list
    },
    all: () => {
      const d = data()
      const out: Record<string, ObjectEntry> = { [SEQ_ID]: { seq: d.seq } }
      for (const [id, o] of Object.entries(d.current)) out[id] = o
      for (const [id, list] of Object.entries(d.history)) {
        for (const o of list) out[historyId(id, o.meta.instanceID)] = o
      }
      return out
    }
  }
}

export function emptyObjectTable (): ObjectTableData {
  return { seq: 0, current: {}, history: {} }
}

function sortKey (o: StoredObject): string {
  return joinKey(o.key.objectType, o.key.objectId)
}

function clone<T> (v: T): T {
  return structuredClone(v)
}

export class ObjectTable implements ObjectStore {
  readonly #data: () => ObjectTableData
  /** Makes the given objects' entries (and the sequence counter) durable. */
  readonly #commit: (ids: string[]) => Promise<void>
  readonly #opts: StoreOptions
  readonly #release: (refs: string[]) => Promise<void>

  constructor (
    data: () => ObjectTableData,
    commit: (ids: string[]) => Promise<void>,
    opts: StoreOptions,
    release: (refs: string[]) => Promise<void>
  ) {
    this.#data = data
    this.#commit = commit
    this.#opts = opts
    this.#release = release
  }

  async put (
    key: ObjectKey,
    build: (current: StoredObject | undefined) => ObjectDraftWithState,
    opts: PutObjectOptions = {}
  ): Promise<StoredObject> {
    // Synchronous from read to mutation: in one process no other writer can interleave.
    const data = this.#data()
    const id = objectId(key)
    const current = data.current[id]
    const currentInstance = current?.meta.instanceID ?? 0
    if (opts.expectInstanceId !== undefined && opts.expectInstanceId !== currentInstance) {
      throw preconditionFailed(opts.expectInstanceId, currentInstance)
    }
    if (opts.instanceId !== undefined && opts.instanceId <= currentInstance) {
      throw staleInstance(opts.instanceId, currentInstance)
    }
    const draft = build(current === undefined ? undefined : clone(current))
    const now = nowIso()
    const instanceID = opts.instanceId ?? data.seq + 1
    data.seq = Math.max(data.seq, instanceID)
    const next: StoredObject = {
      key: { ...key },
      meta: {
        ...draft.meta,
        instanceID,
        created: current?.meta.created ?? draft.meta.created ?? now,
        lastUpdate: now
      },
      status: draft.status
    }
    if (draft.dataRef !== undefined) next.dataRef = draft.dataRef
    next.meta.dataID = dataIdFor(draft.dataRef, current, instanceID)
    const older = current === undefined ? [] : [current, ...(data.history[id] ?? [])]
    const keep = retentionFor(this.#opts, key.objectType) - 1
    const kept = older.slice(0, keep)
    const dropped = older.slice(keep)
    const before = { current: data.current[id], history: data.history[id] }
    data.current[id] = next
    data.history[id] = kept
    const moved = [...kept.slice(0, 1), ...dropped].map((o) => historyId(id, o.meta.instanceID))
    // All or nothing: a change whose commit failed is never seen, nor made durable by a later one.
    await this.#commitOrUndo([id, SEQ_ID, ...moved], () => {
      restore(data, id, before)
    })
    const live = new Set([next, ...kept].map((o) => o.dataRef))
    const orphans = [...new Set(dropped.map((o) => o.dataRef))].filter(
      (r): r is string => r !== undefined && !live.has(r)
    )
    if (orphans.length > 0) await this.#release(orphans)
    return clone(next)
  }

  async setStatus (
    key: ObjectKey,
    status: StoredObject['status'],
    expectInstanceId?: number
  ): Promise<StoredObject | undefined> {
    const data = this.#data()
    const cur = data.current[objectId(key)]
    if (cur === undefined) return undefined
    if (expectInstanceId !== undefined && cur.meta.instanceID !== expectInstanceId) {
      throw preconditionFailed(expectInstanceId, cur.meta.instanceID)
    }
    if (cur.status !== status) {
      const was = cur.status
      cur.status = status
      await this.#commitOrUndo([objectId(key)], () => {
        cur.status = was
      })
    }
    return clone(cur)
  }

  async markPolicyReceived (key: ObjectKey): Promise<StoredObject | undefined> {
    const cur = this.#data().current[objectId(key)]
    if (cur === undefined) return undefined
    if (cur.policyReceived !== true) {
      cur.policyReceived = true
      await this.#commitOrUndo([objectId(key)], () => {
        delete cur.policyReceived
      })
    }
    return clone(cur)
  }

  async #commitOrUndo (ids: string[], undo: () => void): Promise<void> {
    try {
      await this.#commit(ids)
    } catch (err) {
      undo()
      throw err
    }
  }

  async get (key: ObjectKey): Promise<StoredObject | undefined> {
    const cur = this.#data().current[objectId(key)]
    return cur === undefined ? undefined : clone(cur)
  }

  async getInstance (key: ObjectKey, instanceId: number): Promise<StoredObject | undefined> {
    const all = await this.history(key)
    return all.find((o) => o.meta.instanceID === instanceId)
  }

  async history (key: ObjectKey): Promise<StoredObject[]> {
    const data = this.#data()
    const id = objectId(key)
    const cur = data.current[id]
    if (cur === undefined) return []
    return clone([cur, ...(data.history[id] ?? [])])
  }

  async orgs (): Promise<string[]> {
    return [...new Set(Object.values(this.#data().current).map((o) => o.key.orgId))].sort()
  }

  async list (q: ObjectQuery): Promise<Page<StoredObject>> {
    const after = decodeCursor(q.cursor)
    const limit = pageLimit(q.limit)
    const matches = Object.values(this.#data().current)
      .filter(
        (o) =>
          o.key.orgId === q.orgId &&
          (q.objectType === undefined || o.key.objectType === q.objectType) &&
          (q.statuses === undefined || q.statuses.includes(o.status)) &&
          (q.since === undefined || (o.meta.lastUpdate ?? '') >= q.since) &&
          (q.destinationType === undefined || o.meta.destinationType === q.destinationType) &&
          (q.destinationId === undefined || o.meta.destinationID === q.destinationId) &&
          (q.deleted === undefined || (o.meta.deleted === true) === q.deleted) &&
          (after === undefined || sortKey(o) > after)
      )
      .sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1))
    const items = matches.slice(0, limit)
    const last = items.at(-1)
    const page: Page<StoredObject> = { items: clone(items) }
    if (matches.length > limit && last !== undefined) page.next = encodeCursor(sortKey(last))
    return page
  }

  async remove (key: ObjectKey): Promise<string[]> {
    const data = this.#data()
    const id = objectId(key)
    const all = [data.current[id], ...(data.history[id] ?? [])].filter(
      (o): o is StoredObject => o !== undefined
    )
    if (all.length === 0) return []

    const before = { current: data.current[id], history: data.history[id] }
    const ids = [id, ...historyIds(data, id)]
    delete data.current[id]
    delete data.history[id]
    await this.#commitOrUndo(ids, () => {
      restore(data, id, before)
    })
    return [...new Set(all.map((o) => o.dataRef).filter((r): r is string => r !== undefined))]
  }
}

function restore (
  data: ObjectTableData,
  id: string,
  before: { current: StoredObject | undefined; history: StoredObject[] | undefined }
): void {
  if (before.current === undefined) Reflect.deleteProperty(data.current, id)
  else data.current[id] = before.current
  if (before.history === undefined) Reflect.deleteProperty(data.history, id)
  else data.history[id] = before.history
}

export function assertSeqSane (data: ObjectTableData): void {
  if (!Number.isSafeInteger(data.seq) || data.seq < 0) {
    throw new SyncError(SyncErrorCode.STORAGE, 'Object table has a corrupt sequence counter')
  }
}

/** dataID is the instanceID of the last instance that changed the data (0 = no data). */
export function dataIdFor (
  dataRef: string | undefined,
  current: StoredObject | undefined,
  instanceID: number
): number {
  if (dataRef === undefined) return 0
  if (current !== undefined && current.dataRef === dataRef) return current.meta.dataID
  return instanceID
}
