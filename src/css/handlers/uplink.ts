/**
 * `chunk`, `busy`, `gone`: an edge's answers while the CSS pulls the data of an object the edge
 * offered. Rule: only the node the object comes from may answer for its transfer (the transfer
 * manager matches the origin); answers for anything else are ignored.
 */
import type { DestinationKey } from '../../common/model.js'
import type { Handler } from './context.js'

function origin (node: DestinationKey): { originType: string, originID: string } {
  return { originType: node.destinationType, originID: node.destinationId }
}

export const onChunk: Handler<'chunk'> = async (ctx, node, msg) => {
  await ctx.uplink.onChunk(node.orgId, msg, origin(node))
}

export const onBusy: Handler<'busy'> = async (ctx, node, msg) => {
  ctx.uplink.onBusy(node.orgId, msg, origin(node))
}

export const onGone: Handler<'gone'> = async (ctx, node, msg) => {
  await ctx.uplink.onGone(node.orgId, msg, origin(node))
}
