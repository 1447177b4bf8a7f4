/**
 * Edge to cloud, on the ESS's local API: an edge app creates an object (metadata, then optionally
 * streamed data); the ESS stores it and offers it to the CSS, which pulls large data in chunks.
 * `.../destinations` shows the cloud's side: delivered (stored in the CSS) and consumed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import { objectPutBody } from '../api/schemas.js'
import { destinationView } from '../api/views.js'
import { NotFoundError, SyncError, SyncErrorCode } from '../common/errors.js'
import type { ObjectKey, ObjectMetadata, StoredObject } from '../common/model.js'
import type { Store } from '../storage/index.js'
import { CLOUD, type EdgeSync } from './sync.js'
import { appObjectKey, objParams } from './app-access.js'

/** Fields an edge app may set on an object it sends to the cloud. */
const APP_FIELDS = ['version', 'description', 'contentType', 'expiration', 'noData', 'link'] as const

export function registerEdgeObjectRoutes (
  app: FastifyInstance,
  store: Store,
  sync: EdgeSync,
  maxDataSize: number
): void {
  const key = (req: FastifyRequest): ObjectKey => appObjectKey(req, sync.node.orgId)
  /** Edge apps may only write objects that originate here, never ones the cloud sent. */
  const own = (cur: StoredObject | undefined): void => {
    if (
      cur !== undefined &&
      cur.meta.deleted !== true &&
      !isOwn(cur, sync)
    ) {
      throw new SyncError(
        SyncErrorCode.CONFLICT,
        'This object came from the cloud; edge apps cannot overwrite it'
      )
    }
  }

  app.put<{ Body: { meta: Record<string, unknown>; data?: string | null } }>(
    '/api/v1/objects/:objectType/:objectID',
    {
      schema: {
        summary: 'Create or update an object to send to the cloud ({meta, data})',
        params: objParams,
        body: objectPutBody
      }
    },
    async (req, reply) => {
      const k = key(req)
      const body = req.body
      own(await store.objects.get(k))
      const fields: Record<string, unknown> = {}
      for (const f of APP_FIELDS) {
        if (body.meta[f] !== undefined && body.meta[f] !== null) fields[f] = body.meta[f]
      }
      const data =
        body.data === undefined || body.data === null ? undefined : Buffer.from(body.data, 'base64')
      const blob = data === undefined ? undefined : await store.blobs.write([data], { maxSize: maxDataSize })
      const obj = await store.objects.put(k, () => ({
        meta: {
          ...base(k, sync),
          ...fields,
          ...(blob === undefined ? {} : { objectSize: blob.size, dataHash: blob.sha256 })
        } as unknown as ObjectMetadata,
        status: 'ready',
        ...(blob === undefined ? {} : { dataRef: blob.ref })
      }))
      await sync.offer(obj)
      return await reply.code(204).header('x-sync-instance-id', String(obj.meta.instanceID)).send()
    }
  )

  app.put(
    '/api/v1/objects/:objectType/:objectID/data',
    {
      schema: {
        summary: 'Upload the data of an object to send to the cloud (binary body, streamed)',
        params: objParams
      }
    },
    async (req, reply) => {
      const k = key(req)
      const cur = await store.objects.get(k)
      if (cur === undefined || cur.meta.deleted === true) {
        throw new NotFoundError(`Object ${k.objectType}/${k.objectId} not found: PUT its metadata first`)
      }
      own(cur)
      const body = req.body ?? Buffer.alloc(0) // no body at all: empty data
      const blob = await store.blobs.write(Buffer.isBuffer(body) ? [body] : (body as Readable), {
        maxSize: maxDataSize
      })
      const obj = await store.objects.put(k, (c) => ({
        meta: { ...(c ?? cur).meta, objectSize: blob.size, dataHash: blob.sha256 },
        status: 'ready',
        dataRef: blob.ref
      }))
      await sync.offer(obj)
      return await reply.code(204).header('x-sync-instance-id', String(obj.meta.instanceID)).send()
    }
  )

  app.get(
    '/api/v1/objects/:objectType/:objectID/destinations',
    {
      schema: {
        summary: 'Where an edge object stands in the cloud: delivered (stored) or consumed',
        params: objParams
      }
    },
    async (req) => {
      const k = key(req)
      const d = await store.deliveries.get(k, { orgId: k.orgId, ...CLOUD })
      if (d === undefined) throw new NotFoundError('No delivery to the cloud for this object')
      return [destinationView(d)]
    }
  )

  app.delete(
    '/api/v1/objects/:objectType/:objectID',
    {
      schema: {
        summary: 'Delete an object this edge sent to the cloud (the CSS removes its copy too)',
        params: objParams
      }
    },
    async (req, reply) => {
      const k = key(req)
      const cur = await store.objects.get(k)
      if (cur === undefined || cur.meta.deleted === true) {
        throw new NotFoundError(`Object ${k.objectType}/${k.objectId} not found`)
      }
      if (!isOwn(cur, sync)) {
        throw new SyncError(
          SyncErrorCode.CONFLICT,
          'This object came from the cloud; edge apps mark it consumed (PUT .../consumed) instead of deleting it'
        )
      }
      // A tombstone until the CSS confirms (`state: withdrawn`): a withdraw lost on the way is
      // sent again at the next connect.
      const gone = await store.objects.put(k, (c) => ({
        meta: { ...(c ?? cur).meta, deleted: true },
        status: 'objdeleted'
      }))
      sync.withdraw(gone)
      return await reply.code(204).send()
    }
  )
}

/** Whether this edge created the object (edge to cloud), as opposed to receiving it from the CSS. */
export function isOwn (o: StoredObject, sync: EdgeSync): boolean {
  return o.meta.originType === sync.node.destinationType && o.meta.originID === sync.node.destinationId
}

function base (k: ObjectKey, sync: EdgeSync): Record<string, unknown> {
  return {
    objectID: k.objectId,
    objectType: k.objectType,
    destinationOrgID: k.orgId,
    dataID: 0,
    objectSize: 0,
    originType: sync.node.destinationType,
    originID: sync.node.destinationId
  }
}
