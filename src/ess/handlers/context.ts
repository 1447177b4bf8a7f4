/**
 * What every ESS message handler may use. One file per CSS message kind (Aedes's lib/handlers
 * layout); each says next to its code what it trusts and why.
 */
import type { Logger } from '../../common/log.js'
import type { DestinationKey, ObjectMetadata } from '../../common/model.js'
import type { DownMessage } from '../../common/protocol/messages.js'
import type { Store } from '../../storage/index.js'
import type { ChunkServer } from '../../transfer/chunk-server.js'
import type { TransferManager } from '../../transfer/receiver.js'
import type { Registration } from '../registration.js'
import type { TrustStore } from '../trust.js'
import type { Uplink } from '../uplink.js'
import type { PluginAction, PluginState } from '../plugins.js'

/** Tells local apps (events, webhooks) that an object changed. */
export interface Notices {
  notify: (kind: 'update' | 'delete', meta: ObjectMetadata) => void
}

/** The part of the plugin host the protocol drives. */
export interface PluginGate {
  /** A new instance was stored: the plugin for its type (if any) gets it. */
  offer: (meta: ObjectMetadata) => void
  /** Why a plugin refused this instance, if it did. */
  refusal: (objectType: string, objectId: string, instanceId: number) => string | undefined
  /** What the plugins report (heartbeats and the local health). */
  status: () => Record<string, Record<string, unknown>>
  /** Held while the edge resyncs, so only the newest instance of anything missed runs. */
  pause: () => void
  resume: () => void
  /** An operator's lifecycle action on one plugin; the state reached. */
  control: (name: string, action: PluginAction) => Promise<PluginState>
}

export interface EdgeContext {
  store: Store
  node: DestinationKey
  up: Uplink
  /** Verifies signatures when set (the enrolled org key plus keys learned on rotation). */
  trust: TrustStore | undefined
  transfers: TransferManager
  chunks: ChunkServer
  registration: Registration
  notices: Notices
  plugins: PluginGate
  /** Chunk size asked of the CSS when it does not say. */
  chunkSize: number
  /** Sends a heartbeat now (the plugins' states after a change). */
  heartbeat: () => void
}

export type EdgeHandler<K extends DownMessage['kind']> = (
  ctx: EdgeContext,
  msg: Extract<DownMessage, { kind: K }>,
  log: Logger
) => Promise<void>
