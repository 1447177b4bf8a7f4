/**
 * `chunk`, `busy`, `gone`: answers to this edge's fetches of a large object (CSS to edge).
 * Rule: the transfer manager takes them only for a transfer it started itself (an update named
 * the instance), so a chunk of anything else is dropped there.
 */
import type { EdgeHandler } from './context.js'

export const onChunk: EdgeHandler<'chunk'> = async (ctx, msg) => {
  await ctx.transfers.onChunk(ctx.node.orgId, msg)
}

export const onBusy: EdgeHandler<'busy'> = async (ctx, msg) => {
  ctx.transfers.onBusy(ctx.node.orgId, msg)
}

export const onGone: EdgeHandler<'gone'> = async (ctx, msg) => {
  await ctx.transfers.onGone(ctx.node.orgId, msg)
}
