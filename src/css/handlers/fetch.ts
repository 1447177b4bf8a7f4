/**
 * `fetch`: an edge asks for a byte range of an instance's data (chunked transfer, cloud to edge).
 * Rule: only an instance addressed to the sender. Anything else gets no answer at all: a `gone`
 * would tell a guesser that the object exists.
 */
import { nodeUsername } from '../../common/protocol/topics.js'
import type { Handler } from './context.js'
import { addressedObject } from './rights.js'

export const onFetch: Handler<'fetch'> = async (ctx, node, msg, log) => {
  if (await addressedObject(ctx, node, msg, log) === undefined) return
  await ctx.chunks.onFetch(nodeUsername(node), node.orgId, msg)
}
