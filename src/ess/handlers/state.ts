/**
 * `state`: the CSS stored, consumed, or removed (after a withdraw) an object this edge offered.
 * Rule: it speaks only of this edge's own objects (the key is in this edge's org, and a status
 * changes only on an object that originates here, at the instance named).
 */
import type { EdgeHandler } from './context.js'
import { CLOUD } from './cloud.js'
import { objectKey } from './shared.js'

export const onState: EdgeHandler<'state'> = async (ctx, msg) => {
  const key = objectKey(ctx, msg.objectType, msg.objectId)
  ctx.chunks.finished('css', msg)
  const cur = await ctx.store.objects.get(key)
  const own = cur !== undefined && cur.meta.originType === ctx.node.destinationType &&
    cur.meta.originID === ctx.node.destinationId
  if (msg.state === 'withdrawn') {
    // The CSS removed its copy of an object an app deleted here: the tombstone can go.
    if (own && cur.meta.deleted === true && cur.meta.instanceID <= msg.instanceId) {
      for (const ref of await ctx.store.objects.remove(key)) await ctx.store.blobs.remove(ref)
      await ctx.store.deliveries.removeByObject(key)
    }
    return
  }
  const status = msg.state === 'stored' ? 'delivered' : 'consumed'
  await ctx.store.deliveries.upsertMany([{ ...key, ...CLOUD, instanceId: msg.instanceId, status }])
  // Open Horizon's ESS shows an object the cloud's apps consumed as `consumedByDest`.
  if (msg.state === 'consumed' && own && cur.meta.instanceID === msg.instanceId && cur.meta.deleted !== true) {
    await ctx.store.objects.setStatus(key, 'consumedByDest', msg.instanceId)
  }
}
