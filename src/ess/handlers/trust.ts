/**
 * `trust`: the CSS announces a new signing key (key rotation). Rule: learned only when a key
 * this edge already trusts signed the announcement.
 */
import type { EdgeHandler } from './context.js'

export const onTrust: EdgeHandler<'trust'> = async (ctx, msg, log) => {
  if (ctx.trust === undefined) return
  if (await ctx.trust.learn(ctx.node.orgId, msg.publicKey, msg.sig)) {
    log.info('Trusting a new signing key (rotation)', { keyId: msg.publicKey.split(':')[0] })
  } else {
    log.warn('Refused a signing key announcement that no trusted key signed')
  }
}
