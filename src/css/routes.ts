/** CSS REST routes, Open Horizon paths and shapes plus our additive endpoints. */
import type { LeaderStatus } from './leader.js'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import { isSyncError, NotFoundError, SyncError, SyncErrorCode, ValidationError } from '../common/errors.js'
import type { NodeRecord, ObjectKey, StoredObject } from '../common/model.js'
import { nodeUsername } from '../common/protocol/topics.js'
import { forbidden, nameSchema, parseRange } from '../api/server.js'
import { objectPutBody } from '../api/schemas.js'
import { destinationView } from '../api/views.js'
import { requireObjectAccess, requireOrg } from '../security/acl.js'
import { generateSecret, hashGeneratedSecret, type Identity } from '../security/index.js'
import type { Store } from '../storage/index.js'
import type { ObjectService } from './objects.js'
import { parseContentRange, type Uploads } from './uploads.js'
import { isOnline } from './presence.js'

interface Deps {
  signingKey: (orgId: string) => Promise<string>
  /** Where edges reach the broker (as the CSS listens: the host may need replacing). */
  brokerUrls: readonly string[]
  offlineAfterMs: number
  store: Store
  objects: ObjectService
  uploads: Uploads
  sendState: (obj: StoredObject, state: 'consumed') => Promise<void>
  startedAt: number
  counters: () => Record<string, unknown>
  ready: () => boolean
  /** Live state of the store and the broker. */
  health: () => Promise<CssHealth>
  /** Types only the CSS and its extensions write (EMS layers and configs, `_*`). */
  ownsType: (objectType: string) => boolean
}

const orgParams = { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] } as const
const objParams = {
  type: 'object',
  properties: { orgID: nameSchema, objectType: nameSchema, objectID: nameSchema },
  required: ['orgID', 'objectType', 'objectID']
} as const
const destParams = {
  type: 'object',
  properties: { orgID: nameSchema, destType: nameSchema, destID: nameSchema },
  required: ['orgID', 'destType', 'destID']
} as const

/** The path parameters that name an object. */
export interface ObjectParams { orgID: string, objectType: string, objectID: string }

/** The body of an object write: metadata and, optionally, small data inline (base64). */
interface ObjectPutBody { meta: Record<string, unknown>; data?: string | null }

export function objKey (p: ObjectParams): ObjectKey {
  return { orgId: p.orgID, objectType: p.objectType, objectId: p.objectID }
}

function ifMatch (req: FastifyRequest): number | undefined {
  const h = req.headers['if-match']
  if (h === undefined || h === '*') return undefined
  const m = /^(?:W\/)?"(\d+)"$/.exec(String(h).trim())
  if (m === null) throw new ValidationError('If-Match must be an ETag from this API, e.g. "12"')
  return Number(m[1])
}

function etag (o: StoredObject): string {
  return `"${o.meta.instanceID}"`
}

async function mustGet (store: Store, key: ObjectKey): Promise<StoredObject> {
  const o = await store.objects.get(key)
  if (o === undefined || o.meta.deleted === true) {
    throw new NotFoundError(`Object ${key.objectType}/${key.objectId} not found`)
  }
  return o
}

/**
 * Read access to one object: the ACL rules, or any authenticated app of any org when the object is
 * marked `public`. Other objects answer 403 whether they exist or not.
 */
async function readAccess (store: Store, who: Identity | undefined, key: ObjectKey): Promise<void> {
  try {
    await requireObjectAccess(store.users, who, key.orgId, key.objectType, false)
  } catch (err) {
    if (!isSyncError(err) || err.code !== 'SYNC_ERR_FORBIDDEN' || who?.role === 'node') throw err
    const o = await store.objects.get(key)
    if (o?.meta.public !== true || o.meta.deleted === true) throw err
  }
}

/** A node is online while connected and heard from within NodeOfflineAfterSeconds. */
export function nodeView (n: NodeRecord, offlineAfterMs: number, now = Date.now()): Record<string, unknown> {
  const online = isOnline(n, offlineAfterMs, now)
  return {
    destinationOrgID: n.orgId,
    destinationType: n.destinationType,
    destinationID: n.destinationId,
    communication: n.protocol.toLowerCase(),
    codeVersion: n.codeVersion ?? '',
    lastPingTime: n.lastHeartbeat ?? '',
    online,
    properties: n.properties,
    registeredAt: n.registeredAt
  }
}

async function allPages<T> (fetch: (cursor?: string) => Promise<{ items: T[]; next?: string }>): Promise<T[]> {
  const out: T[] = []
  let cursor: string | undefined
  do {
    const p = await fetch(cursor)
    out.push(...p.items)
    cursor = p.next
  } while (cursor !== undefined)
  return out
}

/** What the store, the broker and the lease say right now (never a fixed answer). */
export interface CssHealth {
  store: boolean
  broker: boolean
  lease: LeaderStatus
}

export function registerCssRoutes (app: FastifyInstance, d: Deps): void {
  const { store, objects, uploads } = d

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }))
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    if (!d.ready()) return await reply.code(503).send({ status: 'starting' })
    const h = await d.health()
    const body = {
      status: h.store && h.broker ? 'ready' : 'degraded',
      store: h.store ? 'up' : 'down',
      broker: h.broker ? 'up' : 'down',
      // Not a readiness condition: a follower serves REST and edges as well as the leader.
      lease: h.lease
    }
    return await reply.code(h.store && h.broker ? 200 : 503).send(body)
  })
  app.get(
    '/api/v1/health',
    {
      schema: {
        summary: 'Health report (Open Horizon shape plus counters): the store and broker as they answer now'
      }
    },
    async () => {
      const h = await d.health()
      const color = (ok: boolean): string => (ok ? 'green' : 'red')
      return {
        general: {
          nodeType: 'CSS',
          healthStatus: color(h.store && h.broker),
          upTime: Math.round((Date.now() - d.startedAt) / 1000),
          counters: d.counters()
        },
        dbHealth: { dbStatus: color(h.store), store: store.kind },
        mqttHealth: { mqttStatus: color(h.broker) }
      }
    }
  )
  /** Objects of owned types change only through their owner (e.g. the EMS API), never here. */
  const writable = (key: ObjectKey): void => {
    if (d.ownsType(key.objectType)) {
      throw forbidden(
        `Objects of type ${key.objectType} are managed by the CSS (e.g. the EMS API); the objects API cannot change them`
      )
    }
  }

  app.put<{ Params: ObjectParams, Body: ObjectPutBody }>(
    '/api/v1/objects/:orgID/:objectType/:objectID',
    {
      schema: { summary: 'Create or update an object ({meta, data})', params: objParams, body: objectPutBody }
    },
    async (req, reply) => {
      const key = objKey(req.params)
      const body = req.body
      writable(key)
      const who = await requireObjectAccess(
        store.users,
        req.identity,
        key.orgId,
        key.objectType,
        true,
        body.meta
      )
      const data =
        body.data === undefined || body.data === null ? undefined : Buffer.from(body.data, 'base64')
      const obj = await objects.put(key, body.meta, data, `${who.orgId}/${who.appKey}`, ifMatch(req), req.id)
      return await reply
        .code(204)
        .header('etag', etag(obj))
        .header('x-sync-instance-id', String(obj.meta.instanceID))
        .send()
    }
  )

  app.get<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID',
    { schema: { summary: 'Object metadata', params: objParams } },
    async (req, reply) => {
      const key = objKey(req.params)
      await readAccess(store, req.identity, key)
      const o = await mustGet(store, key)
      if (req.headers['if-none-match'] === etag(o)) return await reply.code(304).send()
      return await reply.header('etag', etag(o)).send({ ...o.meta, status: o.status })
    }
  )

  app.delete<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID',
    { schema: { summary: 'Delete an object (propagates to destinations)', params: objParams } },
    async (req, reply) => {
      const key = objKey(req.params)
      writable(key)
      // Type access first: whether an object exists is itself not shown to those without access.
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, true)
      await requireObjectAccess(
        store.users,
        req.identity,
        key.orgId,
        key.objectType,
        true,
        (await mustGet(store, key)).meta
      )
      await objects.delete(key)
      return await reply.code(204).send()
    }
  )

  app.put<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/data',
    { schema: { summary: 'Upload object data (binary body, streamed)', params: objParams } },
    async (req, reply) => {
      const key = objKey(req.params)
      writable(key)
      // Type access first: whether an object exists is itself not shown to those without access.
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, true)
      await requireObjectAccess(
        store.users,
        req.identity,
        key.orgId,
        key.objectType,
        true,
        (await mustGet(store, key)).meta
      )
      const sha = req.headers['x-data-sha256']
      if (sha !== undefined && (typeof sha !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha))) {
        throw new ValidationError('x-data-sha256 must be 64 hex digits')
      }
      const cr = req.headers['content-range']
      if (cr === undefined) {
        // No body at all is empty data (as Open Horizon reads it), not a failed read.
        const obj = await objects.putData(
          key,
          (req.body ?? Buffer.alloc(0)) as Readable | Buffer,
          ifMatch(req),
          sha
        )
        return await reply.code(204).header('etag', etag(obj)).send()
      }
      const body =
        req.body === undefined || req.body === null
          ? [Buffer.alloc(0)]
          : Buffer.isBuffer(req.body)
            ? [req.body]
            : (req.body as Readable)
      const r = await uploads.piece(key, parseContentRange(cr), body, sha, ifMatch(req))
      if (r.obj !== undefined) return await reply.code(204).header('etag', etag(r.obj)).send()
      // Incomplete: 202 with where to go on (the Range header, as resumable-upload protocols do).
      return await reply
        .code(202)
        .header('range', `bytes=0-${r.received - 1}`)
        .send({ received: r.received, total: r.total })
    }
  )

  app.get<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/upload',
    {
      schema: {
        summary: 'Progress of a Content-Range upload: bytes received so far (edgesync)',
        params: objParams
      }
    },
    async (req) => {
      const key = objKey(req.params)
      // Type access first: whether an object exists is itself not shown to those without access.
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, true)
      await requireObjectAccess(
        store.users,
        req.identity,
        key.orgId,
        key.objectType,
        true,
        (await mustGet(store, key)).meta
      )
      const st = await uploads.status(key)
      if (st === undefined) throw new NotFoundError('No upload under way for this object')
      return st
    }
  )

  app.get<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/data',
    { schema: { summary: 'Object data; Range supported', params: objParams } },
    async (req, reply) => {
      const key = objKey(req.params)
      await readAccess(store, req.identity, key)
      const o = await mustGet(store, key)
      if (o.dataRef === undefined) throw new NotFoundError('Object has no data')
      const size = o.meta.objectSize
      const range = parseRange(req.headers.range, size)
      const stream = await store.blobs.read(o.dataRef, range)
      if (stream === undefined) throw new NotFoundError('Object data is missing')
      void reply
        .header('etag', `"d${o.meta.dataID}"`)
        .header('accept-ranges', 'bytes')
        .type('application/octet-stream')
      if (range !== undefined) {
        return await reply
          .code(206)
          .header('content-range', `bytes ${range.start}-${Math.min(range.end, size - 1)}/${size}`)
          .header('content-length', String(Math.min(range.end, size - 1) - range.start + 1))
          .send(stream)
      }
      return await reply.header('content-length', String(size)).send(stream)
    }
  )

  for (const [suffix, status] of [
    ['consumed', 'objconsumed'],
    ['received', 'objreceived']
  ] as const) {
    app.put<{ Params: ObjectParams }>(
      `/api/v1/objects/:orgID/:objectType/:objectID/${suffix}`,
      {
        schema: {
          summary: `Mark an object that came from an edge ${suffix} (the edge is told when consumed)`,
          params: objParams
        }
      },
      async (req, reply) => {
        const key = objKey(req.params)
        await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, false)
        const o = await mustGet(store, key)
        if (o.meta.originInstanceID === undefined) {
          throw new ValidationError(
            'Only objects that came from an edge can be marked received or consumed on the CSS'
          )
        }
        await store.objects.setStatus(key, status, o.meta.instanceID)
        if (suffix === 'consumed') await d.sendState(o, 'consumed')
        return await reply.code(204).send()
      }
    )
  }

  app.get<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/status',
    { schema: { summary: 'Object status string', params: objParams } },
    async (req, reply) => {
      const key = objKey(req.params)
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, false)
      const o = await mustGet(store, key)
      return await reply.type('text/plain').send(o.status)
    }
  )

  app.put<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/activate',
    { schema: { summary: 'Activate an inactive object', params: objParams } },
    async (req, reply) => {
      const key = objKey(req.params)
      writable(key)
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, true)
      await objects.activate(key)
      return await reply.code(204).send()
    }
  )

  app.get<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/destinations',
    { schema: { summary: 'Delivery status per destination', params: objParams } },
    async (req) => {
      const key = objKey(req.params)
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, false)
      await mustGet(store, key)
      const recs = await allPages(
        async (cursor) =>
          await store.deliveries.listByObject(key, {
            limit: 1000,
            ...(cursor === undefined ? {} : { cursor })
          })
      )
      return recs.map(destinationView)
    }
  )

  app.get<{ Params: ObjectParams }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/history',
    { schema: { summary: 'Retained instances, newest first (edgesync)', params: objParams } },
    async (req) => {
      const key = objKey(req.params)
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, false)
      const h = await store.objects.history(key)
      if (h.length === 0) throw new NotFoundError(`Object ${key.objectType}/${key.objectId} not found`)
      return h.map((o) => ({ ...o.meta, status: o.status }))
    }
  )

  app.get<{ Params: { orgID: string, objectType: string, objectID: string, instanceID: number } }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/instances/:instanceID',
    {
      schema: {
        summary: 'One retained instance (edgesync)',
        params: {
          type: 'object',
          properties: { ...objParams.properties, instanceID: { type: 'integer', minimum: 1 } },
          required: [...objParams.required, 'instanceID']
        }
      }
    },
    async (req) => {
      const p = req.params
      const key = objKey(p)
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, false)
      const o = await store.objects.getInstance(key, Number(p.instanceID))
      if (o === undefined) throw new NotFoundError(`Instance ${p.instanceID} is not retained`)
      return { ...o.meta, status: o.status }
    }
  )

  app.post<{ Params: { orgID: string, objectType: string, objectID: string, instanceID: number } }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/instances/:instanceID/restore',
    {
      schema: {
        summary: 'Rollback: publish an earlier instance again as a new instance (edgesync)',
        params: {
          type: 'object',
          properties: { ...objParams.properties, instanceID: { type: 'integer', minimum: 1 } },
          required: [...objParams.required, 'instanceID']
        }
      }
    },
    async (req) => {
      const p = req.params
      const key = objKey(p)
      writable(key)
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, true)
      const o = await objects.restore(key, Number(p.instanceID))
      return { ...o.meta, status: o.status }
    }
  )

  app.get<{
    Params: { orgID: string, objectType: string }
    Querystring: { all_objects?: boolean; limit?: number; cursor?: string }
  }>(
    '/api/v1/objects/:orgID/:objectType',
    {
      schema: {
        summary: 'Objects of a type (all_objects=true) with cursor paging',
        params: {
          type: 'object',
          properties: { orgID: nameSchema, objectType: nameSchema },
          required: ['orgID', 'objectType']
        },
        querystring: {
          type: 'object',
          properties: {
            all_objects: { type: 'boolean' },
            received: { type: 'boolean' },
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
            cursor: { type: 'string', maxLength: 512 }
          }
        }
      }
    },
    async (req, reply) => {
      const p = req.params
      const q = req.query
      await requireObjectAccess(store.users, req.identity, p.orgID, p.objectType, false)
      // Without all_objects, Open Horizon lists the objects that came from edges and no app has
      // consumed yet (with received=true, also those marked received).
      const q2 = q as { received?: boolean }
      const statuses: StoredObject['status'][] | undefined =
        q.all_objects === true
          ? undefined
          : q2.received === true
            ? ['completelyReceived', 'objreceived']
            : ['completelyReceived']
      const page = await store.objects.list({
        orgId: p.orgID,
        objectType: p.objectType,
        deleted: false,
        ...(statuses === undefined ? {} : { statuses }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor })
      })
      if (page.next !== undefined) void reply.header('x-next-cursor', page.next)
      if (page.items.length === 0 && q.cursor === undefined) throw new NotFoundError('No objects to list')
      return page.items.map((o) => ({ ...o.meta, status: o.status }))
    }
  )

  app.get<{ Params: { orgID: string } }>(
    '/api/v1/destinations/:orgID',
    { schema: { summary: 'Registered edge nodes', params: orgParams } },
    async (req) => {
      const orgId = req.params.orgID
      requireOrg(req.identity, orgId)
      const nodes = await allPages(
        async (cursor) =>
          await store.nodes.list({ orgId, limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
      )
      return nodes.map((n) => nodeView(n, d.offlineAfterMs))
    }
  )

  app.get<{ Params: { orgID: string, destType: string, destID: string } }>(
    '/api/v1/destinations/:orgID/:destType/:destID/objects',
    { schema: { summary: "A node's objects and their delivery states", params: destParams } },
    async (req) => {
      const p = req.params
      const dest = { orgId: p.orgID, destinationType: p.destType, destinationId: p.destID }
      requireOrg(req.identity, dest.orgId)
      const recs = await allPages(
        async (cursor) =>
          await store.deliveries.listByDestination(dest, {
            limit: 1000,
            ...(cursor === undefined ? {} : { cursor })
          })
      )
      return recs.map((r) => ({
        orgID: r.orgId,
        objectID: r.objectId,
        objectType: r.objectType,
        status: r.status,
        instanceID: r.instanceId,
        detail: r.detail ?? '',
        message: r.message ?? '',
        lastUpdate: r.updatedAt
      }))
    }
  )

  app.post<{ Params: { orgID: string, destType: string, destID: string }, Querystring: { rotate?: boolean } }>(
    '/api/v1/nodes/:orgID/:destType/:destID/enroll',
    {
      schema: {
        summary:
          'Create broker credentials for an edge node; ?rotate=true replaces the secret of one already enrolled (edgesync)',
        params: destParams,
        querystring: { type: 'object', properties: { rotate: { type: 'boolean' } } }
      }
    },
    async (req, reply: FastifyReply) => {
      const p = req.params
      const dest = { orgId: p.orgID, destinationType: p.destType, destinationId: p.destID }
      const who = requireOrg(req.identity, dest.orgId, true)
      const appKey = nodeUsername(dest)
      // A new secret locks the running ESS out at its next reconnect: only when asked for.
      const rotate = req.query.rotate === true
      if (!rotate && (await store.users.get(appKey)) !== undefined) {
        throw new SyncError(
          SyncErrorCode.CONFLICT,
          `${appKey} is already enrolled; enroll with rotate=true (syncctl nodes enroll --rotate) to issue a new secret, then give it to that ESS (NodeSecret)`
        )
      }
      const secret = generateSecret()
      await store.users.put({
        appKey,
        orgId: dest.orgId,
        role: 'node',
        secretHash: hashGeneratedSecret(secret),
        disabled: false,
        created: new Date().toISOString()
      })
      await store.audit.append({
        at: new Date().toISOString(),
        orgId: dest.orgId,
        actor: who.appKey,
        action: rotate ? 'node.rotate' : 'node.enroll',
        target: appKey
      })
      return await reply.code(201).send({
        appKey,
        secret,
        orgID: dest.orgId,
        destinationType: dest.destinationType,
        destinationID: dest.destinationId,
        signingKey: await d.signingKey(dest.orgId),
        brokerUrls: d.brokerUrls
      })
    }
  )
}
