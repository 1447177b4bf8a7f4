/**
 * The CSS side of the protocol: publishing object instances to their destinations, and the entry
 * point for every ESS message, which goes to its handler (`handlers/`, one file per kind, each with
 * its authorization rule). Handlers are idempotent: the delivery store ignores anything that would
 * move a record backwards, and an edge's register report is the source of truth on reconnect.
 */
import type { SyncConfig } from '../common/config/schema.js'
import { isSyncError, ProtocolError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { DeliveryUpdate, DestinationKey, NodeRecord, ObjectKey, StoredObject } from '../common/model.js'
import { decodeUp, encode, type DownMessage, type UpMessage } from '../common/protocol/messages.js'
import { deleteStatement } from '../common/protocol/statements.js'
import {
  ALL_NODES_DOWN_TOPIC,
  downTopic,
  orgDownTopic,
  parseNodeUsername,
  parseUpTopic
} from '../common/protocol/topics.js'
import type { OrgSigningKeys } from '../security/index.js'
import { readBlob, storeVerifiedFile, type Store } from '../storage/index.js'
import type { CloudTransport } from '../transport/index.js'
import { ChunkServer } from '../transfer/chunk-server.js'
import { TransferManager } from '../transfer/receiver.js'
import { broadcastTopic, isAddressedTo } from './addressing.js'
import {
  HANDLERS,
  storeEdgeObject,
  type HandlerContext,
  type RefusalReason,
  type Notices,
  type SyncHooks,
  type SyncObserver
} from './handlers/index.js'
import type { StatusWriter } from './status-writer.js'

export interface SyncCounters {
  received: number
  /** Malformed messages (not JSON, failing the schema, unknown topic). */
  dropped: number
  /** Well-formed messages the sender had no right to send, by reason. */
  refused: Partial<Record<RefusalReason, number>>
  published: number
}

export interface CloudSyncOptions {
  store: Store
  transport: CloudTransport
  status: StatusWriter
  cfg: Readonly<SyncConfig>
  log: Logger
  /** Where partial edge-to-cloud transfers are kept. */
  transferDir: string
  /** Signs every instance and delete sent to edges with its org's key. */
  signer: OrgSigningKeys
  hooks: SyncHooks
  /** Object types no edge may write (owned by the CSS and its extensions). */
  ownsType: (objectType: string) => boolean
  /** Tells the CSS's apps (webhooks) that an object from an edge arrived or was withdrawn. */
  notices?: Notices
  /** Metrics of what edges say. */
  observe?: SyncObserver
}

const ENCODED_CACHE_ENTRIES = 256

function originOf (m: StoredObject['meta']): DestinationKey {
  return { orgId: m.destinationOrgID, destinationType: m.originType ?? '', destinationId: m.originID ?? '' }
}

export class CloudSync {
  readonly counters: SyncCounters = { received: 0, dropped: 0, refused: {}, published: 0 }
  readonly chunks: ChunkServer
  /** Pulls the data of objects that edges offer (edge to cloud). */
  readonly uplink: TransferManager
  readonly signer: OrgSigningKeys
  readonly #store: Store
  readonly #transport: CloudTransport
  readonly #status: StatusWriter
  readonly #cfg: Readonly<SyncConfig>
  readonly #log: Logger
  readonly #encoded = new Map<string, Buffer>()
  readonly #ctx: HandlerContext

  constructor (o: CloudSyncOptions) {
    const { store, transport, cfg, log } = o
    this.signer = o.signer
    this.#store = store
    this.#transport = transport
    this.#status = o.status
    this.#cfg = cfg
    this.#log = log
    this.chunks = new ChunkServer(
      store,
      {
        maxConcurrent: cfg.MaxConcurrentTransfers,
        idleMs: 30_000,
        reply: async (peer, payload, qos) => {
          const node = parseNodeUsername(peer)
          if (node !== undefined) await transport.publish(downTopic(node), payload, qos)
        }
      },
      log.child({ component: 'css.transfers' })
    )
    this.uplink = new TransferManager({
      dir: o.transferDir,
      window: cfg.TransferWindow,
      timeoutMs: cfg.TransferTimeoutSeconds * 1000,
      maxConcurrent: cfg.MaxConcurrentTransfers,
      // Never awaited: this may run inside a broker message handler.
      send: (msg, meta) => {
        transport.publish(downTopic(originOf(meta)), encode(msg)).catch((err: unknown) => {
          log.warn('Fetch to an edge not sent; the timeout asks again', { err })
        })
      },
      complete: async (meta, file, sha256) => {
        const blob = await storeVerifiedFile(store.blobs, file, { size: meta.objectSize, sha256 })
        await storeEdgeObject(this.#ctx, meta, blob.ref)
      },
      failed: (meta, message) => {
        log.warn('An edge object failed its data check', {
          objectId: meta.objectID,
          origin: meta.originID,
          message
        })
      },
      log: log.child({ component: 'css.uplink' })
    })
    this.#ctx = {
      store,
      transport,
      status: o.status,
      cfg,
      chunks: this.chunks,
      uplink: this.uplink,
      signer: o.signer,
      hooks: o.hooks,
      ownsType: o.ownsType,
      notices: o.notices ?? { notify: () => {} },
      observe: o.observe ?? { acked: () => {}, registered: () => {} },
      updatePayload: async (obj) => await this.#updatePayload(obj),
      deletePayload: async (obj) => await this.#deletePayload(obj),
      sendState: async (obj, state) => {
        await this.sendState(obj, state)
      },
      removeObject: async (key) => {
        await this.removeObject(key)
      },
      refuse: (reason, log, facts) => {
        this.counters.refused[reason] = (this.counters.refused[reason] ?? 0) + 1
        log.warn('Refused an edge message', { reason, ...facts })
      }
    }
  }

  /** Every node of the org the object is addressed to (paged through the node store). */
  async targets (obj: StoredObject): Promise<NodeRecord[]> {
    const out: NodeRecord[] = []
    const m = obj.meta
    const byType =
      m.destinationType !== undefined && m.destinationType !== '' && (m.destinationsList ?? []).length === 0
    const query = { orgId: obj.key.orgId, ...(byType ? { destinationType: m.destinationType } : {}) }
    let cursor: string | undefined
    do {
      const page = await this.#store.nodes.list({
        ...query,
        limit: 1000,
        cursor
      })
      for (const n of page.items) if (isAddressedTo(m, obj.key.orgId, n)) out.push(n)
      cursor = page.next
    } while (cursor !== undefined)
    return out
  }

  #cached (key: string, payload: Buffer): Buffer {
    // Payloads are small (MaxInlineDataSize), so a bounded map is enough; oldest out first.
    if (this.#encoded.size >= ENCODED_CACHE_ENTRIES) {
      this.#encoded.delete(this.#encoded.keys().next().value as string)
    }
    this.#encoded.set(key, payload)
    return payload
  }

  /**
   * The encoded update for an object instance, or why it cannot be sent. Encoded once per instance:
   * a reconnect storm would otherwise read and encode the same data once per registering node.
   */
  async #updatePayload (obj: StoredObject): Promise<{ payload?: Buffer; error?: string }> {
    const cacheKey = `${obj.key.orgId}/${obj.key.objectType}/${obj.key.objectId}#${obj.meta.instanceID}`
    const cached = this.#encoded.get(cacheKey)
    if (cached !== undefined) return { payload: cached }
    const m = obj.meta
    let msg: Extract<DownMessage, { kind: 'update' }>
    if (obj.dataRef === undefined || m.objectSize === 0) {
      msg = { v: 1, kind: 'update', meta: m }
    } else if (m.objectSize > this.#cfg.MaxInlineDataSize) {
      msg = { v: 1, kind: 'update', meta: m, chunkSize: this.#cfg.ChunkSize } // the edge pulls the data
    } else {
      const data = await readBlob(this.#store.blobs, obj.dataRef)
      if (data === undefined) return { error: 'Object data is missing from the store' }
      msg = { v: 1, kind: 'update', meta: m, data: data.toString('base64') }
    }
    msg.sig = await this.signer.sign(obj.key.orgId, m)
    return { payload: this.#cached(cacheKey, encode(msg)) }
  }

  /** A delete is an instruction too: signed, so an edge obeys only its org's CSS. */
  async #deletePayload (obj: StoredObject): Promise<Buffer> {
    const cacheKey = `${obj.key.orgId}/${obj.key.objectType}/${obj.key.objectId}#${obj.meta.instanceID}`
    const cached = this.#encoded.get(cacheKey)
    if (cached !== undefined) return cached
    const ids = {
      objectType: obj.key.objectType,
      objectId: obj.key.objectId,
      instanceId: obj.meta.instanceID
    }
    const sig = await this.signer.sign(obj.key.orgId, deleteStatement(obj.key.orgId, ids))
    return this.#cached(cacheKey, encode({ v: 1, kind: 'delete', ...ids, sig }))
  }

  /** Sends the current instance of an object to every destination it is addressed to. */
  async publish (obj: StoredObject): Promise<number> {
    const key = obj.key
    const targets = await this.targets(obj)
    this.#log.debug('Publishing', {
      objectType: key.objectType,
      objectId: key.objectId,
      instanceId: obj.meta.instanceID,
      edges: targets.length,
      ...(obj.meta.traceId === undefined ? {} : { trace: obj.meta.traceId })
    })
    const rec = (
      n: DestinationKey,
      status: DeliveryUpdate['status'],
      detail: string,
      message?: string
    ): DeliveryUpdate => ({
      ...key,
      destinationType: n.destinationType,
      destinationId: n.destinationId,
      instanceId: obj.meta.instanceID,
      status,
      detail,
      ...(message === undefined ? {} : { message })
    })
    if (obj.meta.deleted === true) {
      await this.#sendAll(obj, targets, await this.#deletePayload(obj))
      return targets.length
    }
    if (obj.meta.inactive === true || obj.status !== 'ready') {
      const why = obj.meta.inactive === true ? 'inactive' : 'waiting for data'
      await this.#status.deliveries(targets.map((n) => rec(n, 'pending', why)))
      return targets.length
    }
    // Nobody to send to yet (edges of the type register later and are sent it then): no read of
    // the data, no signature.
    if (targets.length === 0) return 0
    const { payload, error } = await this.#updatePayload(obj)
    if (payload === undefined) {
      await this.#status.deliveries(targets.map((n) => rec(n, 'error', 'rejected: data missing', error)))
      return targets.length
    }
    // Sent while `delivering` is being written, not after: the object is durable already, and a
    // record never moves backwards (an edge's ack that lands first is not undone by `delivering`,
    // queued before it anyway), so waiting for this write only delayed every delivery (#22).
    const recorded = this.#status.deliveries(targets.map((n) => rec(n, 'delivering', 'sent')))
    // Handled below, after the send; this only keeps an early failure from counting as unhandled.
    recorded.catch(() => {})
    try {
      await this.#sendAll(obj, targets, payload)
    } finally {
      await recorded
    }
    return targets.length
  }

  async #sendAll (obj: StoredObject, targets: NodeRecord[], payload: Buffer): Promise<void> {
    // One publish per destination type or org when addressing allows; the broker fans out.
    const topic = broadcastTopic(obj.meta, obj.key.orgId)
    if (topic !== undefined) {
      await this.#transport.publish(topic, payload)
      this.counters.published++
      return
    }
    for (const n of targets) {
      await this.#transport.publish(downTopic(n), payload)
      this.counters.published++
    }
  }

  /**
   * Entry point for every ESS message. Malformed or refused messages are dropped (never an
   * error); a failure of the store or broker is thrown, so the transport does not acknowledge a
   * message whose effect is not durable and the edge sends it again.
   */
  async onMessage (topic: string, payload: Buffer): Promise<void> {
    this.counters.received++
    const node = parseUpTopic(topic)
    let msg: UpMessage
    try {
      if (node === undefined) throw new ProtocolError(`Not an ESS topic: ${topic.slice(0, 200)}`)
      msg = decodeUp(payload)
    } catch (err) {
      this.counters.dropped++
      this.#log.warn('Dropped a malformed ESS message', {
        err,
        topic: topic.slice(0, 200),
        bytes: payload.length
      })
      return
    }
    const log = this.#log.child({
      node: `${node.orgId}/${node.destinationType}/${node.destinationId}`,
      kind: msg.kind
    })
    try {
      const handle = HANDLERS[msg.kind] as (
        ctx: HandlerContext,
        n: DestinationKey,
        m: UpMessage,
        l: Logger
      ) => Promise<void>
      await handle(this.#ctx, node, msg, log)
    } catch (err) {
      if (isSyncError(err) && err.code === 'SYNC_ERR_PROTOCOL') {
        this.counters.dropped++
        log.warn('Dropped an ESS message', { err })
        return
      }
      // Only a failure that a retry can cure (store, broker) withholds the acknowledgement; a
      // bug would make the edge resend the same message forever.
      const transient =
        isSyncError(err) && (err.code === 'SYNC_ERR_STORAGE' || err.code === 'SYNC_ERR_TRANSPORT')
      log.error(
        transient ? 'Cannot handle an ESS message; it is not acknowledged' : 'Cannot handle an ESS message',
        { err }
      )
      if (transient) throw err
    }
  }

  /**
   * Asks every node to register again within `withinMs`: after the CSS (re)subscribed, whatever
   * edges published while it had no subscription is gone, and their registers rebuild the state.
   */
  async askReregister (withinMs: number): Promise<void> {
    await this.#transport.publish(ALL_NODES_DOWN_TOPIC, encode({ v: 1, kind: 'reregister', withinMs }))
  }

  /** Rotates an org's signing key and tells its nodes to trust the new one (signed by the old). */
  async rotateKey (orgId: string): Promise<string> {
    const r = await this.signer.rotate(orgId)
    this.#encoded.clear()
    await this.#transport.publish(
      orgDownTopic(orgId),
      encode({ v: 1, kind: 'trust', publicKey: r.publicKey, sig: r.trustSig })
    )
    return r.publicKey
  }

  /** Tells the edge an object came from how the CSS side stands: stored, or consumed by an app. */
  async sendState (obj: StoredObject, state: 'stored' | 'consumed' | 'withdrawn'): Promise<void> {
    const m = obj.meta
    if (m.originType === undefined || m.originID === undefined || m.originInstanceID === undefined) return
    const ids = { objectType: m.objectType, objectId: m.objectID, instanceId: m.originInstanceID }
    await this.#transport.publish(downTopic(originOf(m)), encode({ v: 1, kind: 'state', state, ...ids }))
  }

  async removeObject (key: ObjectKey): Promise<void> {
    const refs = await this.#store.objects.remove(key)
    await this.#store.deliveries.removeByObject(key)
    for (const r of refs) await this.#store.blobs.remove(r)
  }
}
