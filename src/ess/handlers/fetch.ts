/**
 * `fetch`: the CSS pulls a chunk of an object this edge offered (edge to cloud).
 * Rule: the chunk server serves only objects of this edge's org held locally.
 */
import type { EdgeHandler } from './context.js'

export const onFetch: EdgeHandler<'fetch'> = async (ctx, msg) => {
  await ctx.chunks.onFetch('css', ctx.node.orgId, msg)
}
