/**
 * `heartbeat`: the node is alive; optional status reported by its plugins.
 * Rule: it speaks only of itself (the topic names it), so there is nothing more to check.
 */
import type { Handler } from './context.js'

export const onHeartbeat: Handler<'heartbeat'> = async (ctx, node, msg) => {
  const status = msg.status !== undefined && Object.keys(msg.status).length > 0 ? msg.status : undefined
  await ctx.status.touch(node, true, status)
  if (status !== undefined) ctx.hooks.reported?.(node, status)
}
