/**
 * `ack`: an edge's state for an instance it was sent (received, consumed, deleted, error).
 * Rule: only for an instance addressed to the sender, no newer than the current one.
 */
import type { DeliveryRecord, ObjectKey } from '../../common/model.js'
import { nodeUsername } from '../../common/protocol/topics.js'
import type { Handler, HandlerContext } from './context.js'
import { addressedObject } from './rights.js'

export const onAck: Handler<'ack'> = async (ctx, node, msg, log) => {
  const obj = await addressedObject(ctx, node, msg, log)
  if (obj === undefined) return
  ctx.chunks.finished(nodeUsername(node), msg)
  const current = msg.instanceId === obj.meta.instanceID && obj.meta.lastUpdate !== undefined
  ctx.observe.acked(msg.state, current ? (Date.now() - Date.parse(obj.meta.lastUpdate ?? '')) / 1000 : undefined)
  const key = obj.key
  log.debug('Edge ack', {
    objectId: msg.objectId,
    instanceId: msg.instanceId,
    state: msg.state,
    ...(msg.trace === undefined ? {} : { trace: msg.trace })
  })
  const status = msg.state === 'received' ? 'delivered' : msg.state
  const rejected = msg.state === 'error' ? { detail: 'rejected', message: msg.message ?? 'error' } : {}
  await ctx.status.deliveries([{ ...key, ...node, instanceId: msg.instanceId, status, ...rejected }])
  if (msg.state === 'error') {
    log.warn('Edge reported a delivery error', { objectId: msg.objectId, message: msg.message })
  }
  if (msg.state === 'deleted') await removeIfAllDeleted(ctx, key)
  if (msg.state === 'consumed') await deleteIfAllConsumed(ctx, key)
  if (msg.state === 'consumed' || msg.state === 'error') {
    const outcome = {
      objectType: msg.objectType,
      objectId: msg.objectId,
      instanceId: msg.instanceId,
      state: msg.state
    }
    await ctx.hooks.outcome(node, msg.message === undefined ? outcome : { ...outcome, message: msg.message })
  }
}

/** Whether the object has delivery records and every one satisfies `ok` (after pending writes). */
async function everyDelivery (
  ctx: HandlerContext,
  key: ObjectKey,
  ok: (d: DeliveryRecord) => boolean
): Promise<boolean> {
  await ctx.status.drain()
  let cursor: string | undefined
  let any = false
  do {
    const page = await ctx.store.deliveries.listByObject(key, {
      limit: 1000,
      ...(cursor === undefined ? {} : { cursor })
    })
    if (!page.items.every(ok)) return false
    any ||= page.items.length > 0
    cursor = page.next
  } while (cursor !== undefined)
  return any
}

/** Delete-on-delivery (`autodelete`): once every destination consumed the current instance. */
async function deleteIfAllConsumed (ctx: HandlerContext, key: ObjectKey): Promise<void> {
  const obj = await ctx.store.objects.get(key)
  if (obj === undefined || obj.meta.autodelete !== true || obj.meta.deleted === true) return
  const current = obj.meta.instanceID
  if (await everyDelivery(ctx, key, (d) => d.instanceId === current && d.status === 'consumed')) {
    await ctx.hooks.allConsumed(key)
  }
}

/** A deleted object leaves the CSS once every destination confirmed (unlike Open Horizon #71). */
async function removeIfAllDeleted (ctx: HandlerContext, key: ObjectKey): Promise<void> {
  const obj = await ctx.store.objects.get(key)
  if (obj?.meta.deleted !== true) return
  const current = obj.meta.instanceID
  if (await everyDelivery(ctx, key, (d) => d.status === 'deleted' && d.instanceId >= current)) {
    await ctx.removeObject(key)
  }
}
