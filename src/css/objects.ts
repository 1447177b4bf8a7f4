/** Object operations behind the CSS REST API: create/update, data upload, delete, activate, restore. */
import { NotFoundError, SyncError, SyncErrorCode, ValidationError } from '../common/errors.js'
import { isValidName, type ObjectKey, type ObjectMetadata, type StoredObject } from '../common/model.js'
import type { ObjectDraft, Store } from '../storage/index.js'

/** Metadata fields an app may set; everything else is the server's. */
const APP_FIELDS = [
  'destinationID',
  'destinationType',
  'destinationsList',
  'destinationSelector',
  'destinationPolicy',
  'expiration',
  'version',
  'description',
  'link',
  'inactive',
  'activationTime',
  'noData',
  'metaOnly',
  'consumers',
  'autodelete',
  'public',
  'hashAlgorithm',
  'publicKey',
  'signature',
  'contentType'
] as const satisfies ReadonlyArray<keyof ObjectMetadata>

export interface Publisher {
  publish: (obj: StoredObject) => Promise<number>
  removeObject: (key: ObjectKey) => Promise<void>
}

function checkMeta (key: ObjectKey, meta: Record<string, unknown>): void {
  const problems: string[] = []
  if (meta.objectID !== undefined && meta.objectID !== key.objectId) {
    problems.push('/meta/objectID: does not match the URL')
  }
  if (meta.objectType !== undefined && meta.objectType !== key.objectType) {
    problems.push('/meta/objectType: does not match the URL')
  }
  if (
    meta.destinationOrgID !== undefined &&
    meta.destinationOrgID !== '' &&
    meta.destinationOrgID !== key.orgId
  ) {
    problems.push('/meta/destinationOrgID: does not match the URL')
  }
  for (const d of (meta.destinationsList as string[] | undefined) ?? []) {
    const [t, i, extra] = d.split(':')
    if (extra !== undefined || !isValidName(t) || !isValidName(i)) {
      problems.push(`/meta/destinationsList: "${d}" is not "type:id"`)
    }
  }
  if (
    meta.destinationID !== undefined &&
    meta.destinationID !== '' &&
    (meta.destinationType === undefined || meta.destinationType === '')
  ) {
    problems.push('/meta/destinationID: needs destinationType')
  }
  for (const f of ['expiration', 'activationTime'] as const) {
    if (typeof meta[f] === 'string' && meta[f] !== '' && Number.isNaN(Date.parse(meta[f]))) {
      problems.push(`/meta/${f}: not an RFC 3339 time`)
    }
  }
  if (problems.length > 0) throw new ValidationError(problems.join('; '), { details: problems })
}

function draftFrom (key: ObjectKey, meta: Record<string, unknown>, owner: string): ObjectDraft {
  const d: Record<string, unknown> = {
    objectID: key.objectId,
    objectType: key.objectType,
    destinationOrgID: key.orgId,
    dataID: 0,
    objectSize: 0,
    ownerID: owner,
    originID: 'cloud',
    originType: 'cloud'
  }
  for (const f of APP_FIELDS) {
    const v = meta[f]
    if (v !== undefined && v !== null && v !== '') d[f] = v
  }
  // Open Horizon: an object has at least one consumer; 0 (Go's zero value) means 1.
  if (d.consumers === 0) d.consumers = 1
  return d as unknown as ObjectDraft
}

export class ObjectService {
  readonly #store: Store
  readonly #pub: Publisher
  readonly #maxData: number
  constructor (store: Store, pub: Publisher, maxDataSize: number) {
    this.#store = store
    this.#pub = pub
    this.#maxData = maxDataSize
  }

  /** PUT object: `{ meta, data? }` (data base64, as Open Horizon). */
  async put (
    key: ObjectKey,
    meta: Record<string, unknown>,
    data: Buffer | undefined,
    owner: string,
    expectInstanceId?: number,
    traceId?: string
  ): Promise<StoredObject> {
    checkMeta(key, meta)
    const draft = draftFrom(key, meta, owner)
    if (traceId !== undefined) draft.traceId = traceId
    const now = Date.now()
    if (draft.expiration !== undefined && Date.parse(draft.expiration) <= now) {
      throw new ValidationError('/meta/expiration: is in the past')
    }
    // A future activation time holds the object back until then (the lifecycle timer activates it).
    if (draft.activationTime !== undefined && Date.parse(draft.activationTime) > now) draft.inactive = true
    const blob =
      data === undefined || draft.noData === true
        ? undefined
        : await this.#store.blobs.write([data], { maxSize: this.#maxData })
    let obj: StoredObject
    try {
      obj = await this.#store.objects.put(
        key,
        (cur) => {
          const keepData =
            blob === undefined &&
            draft.noData !== true &&
            cur?.dataRef !== undefined &&
            draft.metaOnly === true
          if (blob !== undefined) {
            return {
              meta: { ...draft, objectSize: blob.size, dataHash: blob.sha256 },
              status: 'ready',
              dataRef: blob.ref
            }
          }
          if (keepData && cur?.dataRef !== undefined) {
            return {
              meta: {
                ...draft,
                objectSize: cur.meta.objectSize,
                ...(cur.meta.dataHash === undefined ? {} : { dataHash: cur.meta.dataHash })
              },
              status: 'ready',
              dataRef: cur.dataRef
            }
          }
          const ready = draft.noData === true || (draft.link !== undefined && draft.link !== '')
          return { meta: draft, status: ready ? 'ready' : 'notReady' }
        },
        expectInstanceId === undefined ? {} : { expectInstanceId }
      )
    } catch (err) {
      // The instance was refused (conflict, full disk...): its data file must not stay behind.
      if (blob !== undefined) await this.#store.blobs.remove(blob.ref).catch(() => {})
      throw err
    }
    await this.#pub.publish(obj)
    return obj
  }

  /** PUT data: streams the body into the store, then makes a new instance that carries it. */
  async putData (
    key: ObjectKey,
    body: AsyncIterable<Uint8Array> | Buffer,
    expectInstanceId?: number,
    expectSha256?: string
  ): Promise<StoredObject> {
    this.checkWritable(await this.#store.objects.get(key), key)
    const source = Buffer.isBuffer(body) ? [body] : body
    const blob = await this.#store.blobs.write(source, { maxSize: this.#maxData })
    if (expectSha256 !== undefined && blob.sha256 !== expectSha256.toLowerCase()) {
      await this.#store.blobs.remove(blob.ref)
      throw new ValidationError(
        `Data sha256 is ${blob.sha256}, not the ${expectSha256} announced; nothing was stored`
      )
    }
    let obj: StoredObject
    try {
      obj = await this.#store.objects.put(
        key,
        (c) => {
          if (c === undefined) throw new NotFoundError(`Object ${key.objectType}/${key.objectId} not found`)
          return {
            meta: { ...c.meta, objectSize: blob.size, dataHash: blob.sha256 },
            status: 'ready',
            dataRef: blob.ref
          }
        },
        expectInstanceId === undefined ? {} : { expectInstanceId }
      )
    } catch (err) {
      await this.#store.blobs.remove(blob.ref)
      throw err
    }
    await this.#pub.publish(obj)
    return obj
  }

  /** Data may be uploaded to an existing, undeleted object that is not marked noData. */
  checkWritable (cur: StoredObject | undefined, key: ObjectKey): void {
    if (cur === undefined || cur.meta.deleted === true) {
      throw new NotFoundError(`Object ${key.objectType}/${key.objectId} not found`)
    }
    if (cur.meta.noData === true) throw new SyncError(SyncErrorCode.CONFLICT, 'Object is marked noData')
  }

  async delete (key: ObjectKey): Promise<void> {
    const cur = await this.#store.objects.get(key)
    if (cur === undefined || cur.meta.deleted === true) {
      throw new NotFoundError(`Object ${key.objectType}/${key.objectId} not found`)
    }
    const obj = await this.#store.objects.put(key, (c) => ({
      meta: { ...(c ?? cur).meta, deleted: true, objectSize: 0 },
      status: 'ready'
    }))
    const told = await this.#pub.publish(obj)
    if (told === 0) await this.#pub.removeObject(key)
  }

  async activate (key: ObjectKey): Promise<void> {
    const cur = await this.#store.objects.get(key)
    if (cur === undefined || cur.meta.deleted === true) {
      throw new NotFoundError(`Object ${key.objectType}/${key.objectId} not found`)
    }
    if (cur.meta.inactive !== true) return
    const obj = await this.#store.objects.put(key, (c) => {
      const meta = { ...(c ?? cur).meta, inactive: false }
      delete meta.activationTime
      return {
        meta,
        status: (c ?? cur).status,
        ...((c ?? cur).dataRef === undefined ? {} : { dataRef: (c ?? cur).dataRef })
      }
    })
    await this.#pub.publish(obj)
  }

  /** Replaces an object's destinations list (Open Horizon's PUT/POST .../destinations) as a new instance. */
  async setDestinations (key: ObjectKey, change: (current: string[]) => string[]): Promise<StoredObject> {
    const cur = await this.#store.objects.get(key)
    if (cur === undefined || cur.meta.deleted === true) {
      throw new NotFoundError(`Object ${key.objectType}/${key.objectId} not found`)
    }
    const next = change(cur.meta.destinationsList ?? [])
    checkMeta(key, { destinationsList: next })
    const obj = await this.#store.objects.put(key, (c) => {
      const base = c ?? cur
      const meta = { ...base.meta, destinationsList: next }
      delete meta.destinationID
      delete meta.destinationType
      return { meta, status: base.status, ...(base.dataRef === undefined ? {} : { dataRef: base.dataRef }) }
    })
    await this.#pub.publish(obj)
    return obj
  }

  /** Rollback: publishes an earlier instance's metadata and data as a new instance. */
  async restore (key: ObjectKey, instanceId: number): Promise<StoredObject> {
    const old = await this.#store.objects.getInstance(key, instanceId)
    if (old === undefined) {
      throw new NotFoundError(`Instance ${instanceId} of ${key.objectType}/${key.objectId} is not retained`)
    }
    const obj = await this.#store.objects.put(key, () => ({
      meta: { ...old.meta, deleted: false },
      status: old.status,
      ...(old.dataRef === undefined ? {} : { dataRef: old.dataRef })
    }))
    await this.#pub.publish(obj)
    return obj
  }
}
