/**
 * What every CSS message handler may use. Handlers are small functions, one file per message kind
 * (Aedes's lib/handlers layout); each states, next to its code, what the sending node may refer to.
 */
import type { SyncConfig } from '../../common/config/schema.js'
import type { Logger } from '../../common/log.js'
import type { DestinationKey, ObjectKey, ObjectMetadata, StoredObject } from '../../common/model.js'
import type { UpMessage } from '../../common/protocol/messages.js'
import type { OrgSigningKeys } from '../../security/index.js'
import type { Store } from '../../storage/index.js'
import type { CloudTransport } from '../../transport/index.js'
import type { ChunkServer } from '../../transfer/chunk-server.js'
import type { TransferManager } from '../../transfer/receiver.js'
import type { StatusWriter } from '../status-writer.js'

/** An edge's final verdict on an instance, as extensions see it. */
export interface Outcome {
  objectType: string
  objectId: string
  instanceId: number
  state: 'consumed' | 'error'
  message?: string
}

/** Reactions of the composition (and of extensions such as EMS) to what edges say. */
export interface SyncHooks {
  /** Delete-on-delivery: every destination consumed the current instance of an autodelete object. */
  allConsumed: (key: ObjectKey) => Promise<void>
  /** Each final verdict of an edge on an instance. */
  outcome: (node: DestinationKey, ack: Outcome) => Promise<void>
  /** A node registered and was resynced. */
  registered: (node: DestinationKey) => Promise<void>
  /** A heartbeat carried its plugins' status. */
  reported?: (node: DestinationKey, status: Record<string, Record<string, unknown>>) => void
}

/** What the handlers report for metrics (the composition turns it into Prometheus series). */
export interface SyncObserver {
  /** An edge's ack; `ageSeconds` is the time since the instance was written (current instance only). */
  acked: (state: 'received' | 'consumed' | 'deleted' | 'error', ageSeconds: number | undefined) => void
  /** A node registered (and is resynced). */
  registered: () => void
}

/** Why an edge message was dropped: the label of the `refused` counter. */
export type RefusalReason =
  | 'not-addressed' | 'future-instance' | 'stale-instance' | 'owned-type' | 'foreign-origin' | 'bad-hash'

/** Change notices for the CSS's apps (webhooks registered per org and type). */
export interface Notices {
  notify: (kind: 'update' | 'delete', meta: ObjectMetadata) => void
}

export interface HandlerContext {
  store: Store
  transport: CloudTransport
  status: StatusWriter
  cfg: Readonly<SyncConfig>
  chunks: ChunkServer
  uplink: TransferManager
  signer: OrgSigningKeys
  hooks: SyncHooks
  notices: Notices
  observe: SyncObserver
  /** Object types no edge may create or change (the CSS and its extensions own them). */
  ownsType: (objectType: string) => boolean
  /** The encoded, signed update of an instance (cached per instance), or why it cannot be sent. */
  updatePayload: (obj: StoredObject) => Promise<{ payload?: Buffer; error?: string }>
  /** The encoded, signed delete of an instance. */
  deletePayload: (obj: StoredObject) => Promise<Buffer>
  /** Tells the edge an object it offered was stored or consumed. */
  sendState: (obj: StoredObject, state: 'stored' | 'consumed' | 'withdrawn') => Promise<void>
  /** Removes an object, its deliveries and its data. */
  removeObject: (key: ObjectKey) => Promise<void>
  /** Drops a message the sender had no right to send: counted per reason and logged. */
  refuse: (reason: RefusalReason, log: Logger, facts: Record<string, unknown>) => void
}

export type Handler<K extends UpMessage['kind']> = (
  ctx: HandlerContext,
  node: DestinationKey,
  msg: Extract<UpMessage, { kind: K }>,
  log: Logger
) => Promise<void>
