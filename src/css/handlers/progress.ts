/**
 * `progress`: bytes of a chunked transfer an edge holds durably.
 * Rule: only for an instance addressed to the sender, no newer than the current one.
 */
import type { Handler } from './context.js'
import { addressedObject } from './rights.js'

export const onProgress: Handler<'progress'> = async (ctx, node, msg, log) => {
  if ((await addressedObject(ctx, node, msg, log)) === undefined) return
  const { objectType, objectId, instanceId, bytes } = msg
  await ctx.status.deliveries([
    {
      objectType,
      objectId,
      ...node,
      instanceId,
      status: 'delivering',
      detail: msg.detail ?? 'receiving',
      bytes
    }
  ])
}
