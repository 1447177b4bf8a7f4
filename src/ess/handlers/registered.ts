/**
 * `registered`: the CSS answered a register (and resent what this edge missed).
 * `reregister`: the CSS lost messages (a broker restarted) and asks every edge to register again.
 * Rule: both only start or stop our own registering; nothing stored changes.
 */
import type { EdgeHandler } from './context.js'

export const onRegistered: EdgeHandler<'registered'> = async (ctx, msg, log) => {
  log.info('Registered with the CSS', { resent: msg.resent })
  ctx.registration.answered()
}

export const onReregister: EdgeHandler<'reregister'> = async (ctx, msg) => {
  // Spread over the window the CSS asks for: a whole fleet must not register at once.
  ctx.registration.again(msg.withinMs)
}
