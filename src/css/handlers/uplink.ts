/**
 * `chunk`, `busy`, `gone`: an edge's answers while the CSS pulls the data of an object the edge
 * offered. Rule: only the node the object comes from may answer for its transfer (the transfer
 * manager matches the origin); answers for anything else are ignored.
 */
import type { DestinationKey } from '../../common/model.js'
import type { Handler } from './context.js'

function origin (node: DestinationKey): { originType: string; originID: string } {
  return { originType: node.destinationType, originID: node.destinationId }
}

export const onChunk: Handler<'chunk'> = async (ctx, node, msg, log) => {
  // Not awaited, as fetches: the transfer re-requests whatever it does not hold, and the edge
  // learns the object is stored only from the CSS's "stored" answer, once it is durable.
  ctx.uplink.onChunk(node.orgId, msg, origin(node)).catch((err: unknown) => {
    log.warn('An edge chunk was not taken; it is asked for again', { err })
  })
}

export const onBusy: Handler<'busy'> = async (ctx, node, msg) => {
  ctx.uplink.onBusy(node.orgId, msg, origin(node))
}

export const onGone: Handler<'gone'> = async (ctx, node, msg) => {
  await ctx.uplink.onGone(node.orgId, msg, origin(node))
}
