/**
 * `plugin`: an operator asked, through the CSS, to start, stop, pause or resume one of our plugins.
 * Rule: only the CSS publishes on our down topic (broker ACL), and the CSS authorized and audited
 * the request; an unknown plugin or an impossible transition is logged and answered by the
 * heartbeat that follows (which shows the state unchanged), never a crash.
 */
import type { EdgeHandler } from './context.js'

export const onPlugin: EdgeHandler<'plugin'> = async (ctx, msg, log) => {
  try {
    const state = await ctx.plugins.control(msg.plugin, msg.action)
    log.info('Plugin command from the CSS', { plugin: msg.plugin, action: msg.action, state })
  } catch (err) {
    log.warn('Plugin command from the CSS refused', { plugin: msg.plugin, action: msg.action, err })
  }
  ctx.heartbeat()
}
