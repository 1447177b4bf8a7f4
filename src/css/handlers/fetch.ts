/**
 * `fetch`: an edge asks for a byte range of an instance's data (chunked transfer, cloud to edge).
 * Rule: only an instance addressed to the sender. Anything else gets no answer at all: a `gone`
 * would tell a guesser that the object exists.
 */
import { nodeUsername } from '../../common/protocol/topics.js'
import type { Handler } from './context.js'
import { addressedObject } from './rights.js'

export const onFetch: Handler<'fetch'> = async (ctx, node, msg, log) => {
  if ((await addressedObject(ctx, node, msg, log)) === undefined) return
  // Served without holding up the acknowledgement: a fetch changes nothing durable (a lost answer
  // is asked for again), and an edge's window of fetches must be served side by side, not one by
  // one behind its connection's acknowledgements.
  ctx.chunks.onFetch(nodeUsername(node), node.orgId, msg).catch((err: unknown) => {
    log.warn('A chunk was not served; the edge asks again', { err })
  })
}
