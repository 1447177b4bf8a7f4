/** Small pieces several ESS handlers use. */
import type { ObjectKey, StoredObject } from '../../common/model.js'
import type { Holding } from '../../common/protocol/messages.js'
import type { EdgeContext } from './context.js'

/** The state an edge reports for what it holds, by local status. */
export const STATE_OF: Partial<Record<StoredObject['status'], Holding['state']>> = {
  completelyReceived: 'received',
  objreceived: 'received',
  objconsumed: 'consumed'
}

export function objectKey (ctx: EdgeContext, objectType: string, objectId: string): ObjectKey {
  return { orgId: ctx.node.orgId, objectType, objectId }
}

/** Tells the CSS why an instance was not taken (an error ack; it shows in the delivery status). */
export function reject (
  ctx: EdgeContext,
  ids: { objectType: string; objectId: string; instanceId: number },
  message: string
): void {
  ctx.up.sendSoon({ v: 1, kind: 'ack', state: 'error', ...ids, message })
}
