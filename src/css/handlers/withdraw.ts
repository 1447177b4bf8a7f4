/**
 * `withdraw`: an app on the edge deleted an object the edge had offered; the CSS removes its copy.
 * Rules: only an object that originates at the sender (org from the topic, origin type and id
 * equal to the sender's), and only up to the instance named (a withdraw that crossed a newer offer
 * of the same name leaves the newer one). Answered with `state: withdrawn` either way, so the edge
 * can drop its tombstone (an object never offered, or gone already, has nothing left to remove).
 */
import type { ObjectKey } from '../../common/model.js'
import { encode } from '../../common/protocol/messages.js'
import { downTopic } from '../../common/protocol/topics.js'
import type { Handler } from './context.js'

export const onWithdraw: Handler<'withdraw'> = async (ctx, node, msg, log) => {
  const key: ObjectKey = { orgId: node.orgId, objectType: msg.objectType, objectId: msg.objectId }
  const facts = { objectType: key.objectType, objectId: key.objectId }
  const cur = await ctx.store.objects.get(key)
  if (cur !== undefined) {
    if (cur.meta.originType !== node.destinationType || cur.meta.originID !== node.destinationId) {
      ctx.refuse('foreign-origin', log, facts)
      return
    }
    if ((cur.meta.originInstanceID ?? 0) > msg.instanceId) {
      ctx.refuse('stale-instance', log, { ...facts, held: cur.meta.originInstanceID, named: msg.instanceId })
      return
    }
    await ctx.removeObject(key)
    log.info('An edge withdrew its object', facts)
    ctx.notices.notify('delete', { ...cur.meta, deleted: true })
  }
  const ids = { objectType: msg.objectType, objectId: msg.objectId, instanceId: msg.instanceId }
  await ctx.transport.publish(downTopic(node), encode({ v: 1, kind: 'state', state: 'withdrawn', ...ids }))
}
