/**
 * `update`: a new instance of an object addressed to this edge, with its data inline or pulled
 * in chunks afterwards. Rules: a signature that does not verify is refused (nothing reaches an
 * app); an instance no newer than the one held is never stored (duplicates and reordering);
 * inline data must match the hash in the signed metadata.
 */
import type { ObjectMetadata, StoredObject } from '../../common/model.js'
import { storeVerifiedFile } from '../../storage/index.js'
import type { EdgeContext, EdgeHandler } from './context.js'
import { STATE_OF, objectKey, reject } from './shared.js'

export const onUpdate: EdgeHandler<'update'> = async (ctx, msg, log) => {
  const meta = msg.meta
  const key = objectKey(ctx, meta.objectType, meta.objectID)
  const ids = { objectType: key.objectType, objectId: key.objectId, instanceId: meta.instanceID }
  log.debug('Update', { ...ids, ...(meta.traceId === undefined ? {} : { trace: meta.traceId }) })
  if (ctx.trust !== undefined && !ctx.trust.verify(meta, msg.sig)) {
    log.warn('Rejected an object whose signature does not verify', { ...ids, keyId: msg.sig?.keyId })
    reject(ctx, ids, 'rejected: bad signature')
    return
  }
  const cur = await ctx.store.objects.get(key)
  if (cur !== undefined && cur.meta.instanceID >= meta.instanceID) {
    // Duplicate or reordered: never move backwards, but tell the CSS what we hold.
    const state = STATE_OF[cur.status]
    if (state !== undefined) {
      ctx.up.sendSoon({ v: 1, kind: 'ack', state, ...ids, instanceId: cur.meta.instanceID })
    }
    return
  }
  let dataRef: string | undefined
  if (msg.data !== undefined) {
    const blob = await ctx.store.blobs.write([Buffer.from(msg.data, 'base64')])
    if (meta.dataHash !== undefined && blob.sha256 !== meta.dataHash) {
      await ctx.store.blobs.remove(blob.ref)
      reject(ctx, ids, 'rejected: data hash mismatch')
      return
    }
    dataRef = blob.ref
  } else if (meta.dataID !== 0 && cur?.dataRef !== undefined && cur.meta.dataID === meta.dataID) {
    dataRef = cur.dataRef // metadata-only change: the data we hold is still current
  } else if (meta.objectSize > 0 && meta.noData !== true) {
    // Too large to travel inline: pull it in chunks; stored once the data is verified.
    await ctx.transfers.start(meta, msg.chunkSize ?? ctx.chunkSize)
    return
  }
  await accept(ctx, cur, meta, dataRef)
}

/** A chunked transfer finished and its part file verified: it becomes the object's data. */
export async function completeTransfer (
  ctx: EdgeContext,
  meta: ObjectMetadata,
  file: string,
  sha256: string
): Promise<void> {
  const key = objectKey(ctx, meta.objectType, meta.objectID)
  const cur = await ctx.store.objects.get(key)
  if (cur !== undefined && cur.meta.instanceID >= meta.instanceID) return
  // By a rename where the store can (no copy).
  const blob = await storeVerifiedFile(ctx.store.blobs, file, { size: meta.objectSize, sha256 })
  if (meta.dataHash !== undefined && blob.sha256 !== meta.dataHash) {
    // The part file was verified a moment ago: a mismatch here means the local disk is failing.
    await ctx.store.blobs.remove(blob.ref)
    const ids = { objectType: key.objectType, objectId: key.objectId, instanceId: meta.instanceID }
    reject(ctx, ids, 'rejected: data changed while stored locally')
    return
  }
  await accept(ctx, cur, meta, blob.ref)
}

async function accept (
  ctx: EdgeContext,
  cur: StoredObject | undefined,
  meta: ObjectMetadata,
  dataRef: string | undefined
): Promise<void> {
  const key = objectKey(ctx, meta.objectType, meta.objectID)
  const stored = (): Omit<StoredObject, 'key'> =>
    dataRef === undefined
      ? { meta: { ...meta }, status: 'completelyReceived' }
      : { meta: { ...meta }, status: 'completelyReceived', dataRef }
  try {
    await ctx.store.objects.put(key, stored, { instanceId: meta.instanceID })
  } catch (err) {
    if (dataRef !== undefined && dataRef !== cur?.dataRef) await ctx.store.blobs.remove(dataRef)
    if ((err as { code?: string }).code === 'SYNC_ERR_CONFLICT') return // a newer one landed meanwhile
    throw err
  }
  const ids = { objectType: key.objectType, objectId: key.objectId, instanceId: meta.instanceID }
  const trace = meta.traceId === undefined ? {} : { trace: meta.traceId }
  ctx.up.sendSoon({ v: 1, kind: 'ack', state: 'received', ...ids, ...trace })
  ctx.notices.notify('update', meta)
  ctx.plugins.offer(meta)
}
