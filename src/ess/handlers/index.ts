/** The dispatcher: one handler per CSS message kind. */
import type { DownMessage } from '../../common/protocol/messages.js'
import type { EdgeHandler } from './context.js'
import { onDelete } from './delete.js'
import { onFetch } from './fetch.js'
import { onRegistered, onReregister } from './registered.js'
import { onState } from './state.js'
import { onBusy, onChunk, onGone } from './transfer.js'
import { onTrust } from './trust.js'
import { onPlugin } from './plugin.js'
import { onUpdate } from './update.js'

export type { EdgeContext, Notices, PluginGate } from './context.js'
export { completeTransfer } from './update.js'
export { STATE_OF } from './shared.js'
export { CLOUD } from './cloud.js'

type Table = { [K in DownMessage['kind']]: EdgeHandler<K> }

export const EDGE_HANDLERS: Table = {
  registered: onRegistered,
  reregister: onReregister,
  update: onUpdate,
  delete: onDelete,
  chunk: onChunk,
  busy: onBusy,
  gone: onGone,
  fetch: onFetch,
  state: onState,
  trust: onTrust,
  plugin: onPlugin
}
