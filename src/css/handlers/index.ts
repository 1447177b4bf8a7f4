/** The dispatcher: one handler per ESS message kind. */
import type { UpMessage } from '../../common/protocol/messages.js'
import { onAck } from './ack.js'
import type { Handler } from './context.js'
import { onFetch } from './fetch.js'
import { onHeartbeat } from './heartbeat.js'
import { onOffer } from './offer.js'
import { onProgress } from './progress.js'
import { onRegister } from './register.js'
import { onBusy, onChunk, onGone } from './uplink.js'
import { onWithdraw } from './withdraw.js'

export type { HandlerContext, Notices, Outcome, RefusalReason, SyncHooks, SyncObserver } from './context.js'
export { storeEdgeObject } from './offer.js'

type Table = { [K in UpMessage['kind']]: Handler<K> }

export const HANDLERS: Table = {
  register: onRegister,
  heartbeat: onHeartbeat,
  ack: onAck,
  progress: onProgress,
  fetch: onFetch,
  offer: onOffer,
  chunk: onChunk,
  busy: onBusy,
  gone: onGone,
  withdraw: onWithdraw
}
