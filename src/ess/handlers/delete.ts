/**
 * `delete`: the CSS deleted an object. Rule: obeyed only when signed (a forged delete would wipe
 * a config an edge runs); an instance older than the one held is already gone, but acknowledged
 * so the CSS stops resending.
 */
import { deleteStatement } from '../../common/protocol/statements.js'
import type { EdgeHandler } from './context.js'
import { objectKey, reject } from './shared.js'

export const onDelete: EdgeHandler<'delete'> = async (ctx, msg, log) => {
  const key = objectKey(ctx, msg.objectType, msg.objectId)
  const ids = { objectType: msg.objectType, objectId: msg.objectId, instanceId: msg.instanceId }
  const statement = deleteStatement(ctx.node.orgId, ids)
  if (ctx.trust !== undefined && !ctx.trust.verifyStatement(statement, msg.sig)) {
    log.warn('Refused a delete whose signature does not verify', ids)
    reject(ctx, ids, 'rejected: bad signature on delete')
    return
  }
  await ctx.transfers.cancel(ctx.node.orgId, msg.objectType, msg.objectId)
  const cur = await ctx.store.objects.get(key)
  if (cur !== undefined && cur.meta.instanceID < msg.instanceId) {
    const gone = await ctx.store.objects.put(
      key,
      (c) => ({
        meta: { ...(c ?? cur).meta, deleted: true },
        status: 'objdeleted'
      }),
      { instanceId: msg.instanceId }
    )
    ctx.notices.notify('delete', gone.meta)
  }
  ctx.up.sendSoon({ v: 1, kind: 'ack', state: 'deleted', ...ids })
}
