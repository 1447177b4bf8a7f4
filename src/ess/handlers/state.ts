/**
 * `state`: the CSS stored, or its apps consumed, an object this edge offered.
 * Rule: it only updates the delivery record towards the cloud; the object itself is untouched.
 */
import type { EdgeHandler } from './context.js'
import { CLOUD } from './cloud.js'
import { objectKey } from './shared.js'

export const onState: EdgeHandler<'state'> = async (ctx, msg) => {
  const key = objectKey(ctx, msg.objectType, msg.objectId)
  ctx.chunks.finished('css', msg)
  const status = msg.state === 'stored' ? 'delivered' : 'consumed'
  await ctx.store.deliveries.upsertMany([{ ...key, ...CLOUD, instanceId: msg.instanceId, status }])
}
