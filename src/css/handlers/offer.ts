/**
 * `offer`: edge to cloud, an object the edge created; small data inline, else the CSS pulls it.
 * Rules: never a type the CSS owns (EMS layers and configs, anything starting with `_`); never a
 * name an object of another origin (the cloud, another edge) holds, deleted or not; only the
 * fields an edge app may set (no addressing, no `public`, no owner); inline data must match its
 * hash. The org and the origin are the sender's, whatever the message says.
 */
import type { ObjectKey, ObjectMetadata } from '../../common/model.js'
import type { Handler, HandlerContext } from './context.js'

/** What an edge may say about its object, besides its name, instance and data description. */
const EDGE_FIELDS = ['version', 'description', 'contentType', 'expiration', 'noData', 'link'] as const

function edgeMeta (
  msg: ObjectMetadata,
  node: { orgId: string; destinationType: string; destinationId: string }
): ObjectMetadata {
  const meta: ObjectMetadata = {
    objectID: msg.objectID,
    objectType: msg.objectType,
    destinationOrgID: node.orgId,
    instanceID: msg.instanceID,
    dataID: msg.dataID,
    objectSize: msg.objectSize,
    originType: node.destinationType,
    originID: node.destinationId
  }
  if (msg.dataHash !== undefined) meta.dataHash = msg.dataHash
  const out = meta as unknown as Record<string, unknown>
  for (const f of EDGE_FIELDS) if (msg[f] !== undefined) out[f] = msg[f]
  return meta
}

export const onOffer: Handler<'offer'> = async (ctx, node, msg, log) => {
  const m = msg.meta
  const key: ObjectKey = { orgId: node.orgId, objectType: m.objectType, objectId: m.objectID }
  const facts = { objectType: key.objectType, objectId: key.objectId }
  if (ctx.ownsType(key.objectType)) {
    ctx.refuse('owned-type', log, facts)
    return
  }
  const cur = await ctx.store.objects.get(key)
  if (
    cur !== undefined &&
    (cur.meta.originType !== node.destinationType || cur.meta.originID !== node.destinationId)
  ) {
    ctx.refuse('foreign-origin', log, facts)
    return
  }
  if (cur !== undefined && (cur.meta.originInstanceID ?? 0) >= m.instanceID) {
    await ctx.sendState(cur, 'stored') // a repeated offer: the edge missed our answer
    return
  }
  const meta = edgeMeta(m, node)
  if (msg.data !== undefined) {
    await storeInline(ctx, meta, msg.data, log)
  } else if (meta.objectSize === 0 || meta.noData === true) {
    await storeEdgeObject(ctx, meta, undefined)
  } else {
    await ctx.uplink.start(meta, msg.chunkSize ?? ctx.cfg.ChunkSize)
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

async function storeInline (
  ctx: HandlerContext,
  meta: ObjectMetadata,
  data: string,
  log: Parameters<Handler<'offer'>>[3]
): Promise<void> {
  const facts = { objectType: meta.objectType, objectId: meta.objectID }
  if (data.length % 4 !== 0 || !BASE64.test(data)) {
    ctx.refuse('bad-hash', log, facts)
    return
  }
  const bytes = Buffer.from(data, 'base64')
  const blob = await ctx.store.blobs.write([bytes], { maxSize: ctx.cfg.MaxDataSize })
  if ((meta.dataHash !== undefined && blob.sha256 !== meta.dataHash) || blob.size !== meta.objectSize) {
    await ctx.store.blobs.remove(blob.ref)
    ctx.refuse('bad-hash', log, facts)
    return
  }
  try {
    await storeEdgeObject(ctx, { ...meta, dataHash: blob.sha256 }, blob.ref)
  } catch (err) {
    await ctx.store.blobs.remove(blob.ref).catch(() => {}) // nothing of a refused write stays
    throw err
  }
}

/** Stores an edge's object as a new CSS instance and tells the edge (also the uplink's end). */
export async function storeEdgeObject (
  ctx: HandlerContext,
  meta: ObjectMetadata,
  dataRef: string | undefined
): Promise<void> {
  const key: ObjectKey = {
    orgId: meta.destinationOrgID,
    objectType: meta.objectType,
    objectId: meta.objectID
  }
  const { instanceID, created: _c, lastUpdate: _u, ...draft } = meta
  const obj = await ctx.store.objects.put(key, () => ({
    meta: { ...draft, originInstanceID: instanceID },
    status: 'completelyReceived',
    ...(dataRef === undefined ? {} : { dataRef })
  }))
  await ctx.sendState(obj, 'stored')
  ctx.notices.notify('update', obj.meta)
}
