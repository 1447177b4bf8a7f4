/**
 * What a node may refer to. An edge names objects by type, id and instance; it may only name
 * instances the CSS addressed to it, never a newer one than exists. Everything else is dropped
 * without an answer, so a guess cannot even learn whether an object exists.
 */
import type { Logger } from '../../common/log.js'
import type { DestinationKey, NodeRecord, StoredObject } from '../../common/model.js'
import { isAddressedTo } from '../addressing.js'
import type { HandlerContext } from './context.js'

export interface InstanceRef {
  objectType: string
  objectId: string
  instanceId: number
}

/** The node's record (its properties decide selector addressing); a stand-in before it registered. */
export async function nodeRecord (
  ctx: HandlerContext,
  node: DestinationKey
): Promise<Pick<NodeRecord, 'orgId' | 'destinationType' | 'destinationId' | 'properties'>> {
  const rec = await ctx.store.nodes.get(node)
  return rec ?? { ...node, properties: {} }
}

/**
 * The object `ref` names if it is addressed to `node` and the instance exists (or existed);
 * undefined after logging and counting the refusal.
 */
export async function addressedObject (
  ctx: HandlerContext,
  node: DestinationKey,
  ref: InstanceRef,
  log: Logger
): Promise<StoredObject | undefined> {
  const key = { orgId: node.orgId, objectType: ref.objectType, objectId: ref.objectId }
  const obj = await ctx.store.objects.get(key)
  const facts = { objectType: ref.objectType, objectId: ref.objectId, instanceId: ref.instanceId }
  if (obj === undefined || !isAddressedTo(obj.meta, node.orgId, await nodeRecord(ctx, node))) {
    ctx.refuse('not-addressed', log, facts)
    return undefined
  }
  if (ref.instanceId > obj.meta.instanceID) {
    ctx.refuse('future-instance', log, facts)
    return undefined
  }
  return obj
}
