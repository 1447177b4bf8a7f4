/**
 * The CSS side of the protocol: publishing object instances to their destinations and handling
 * every ESS message kind. Handlers are idempotent: the delivery store ignores anything that would
 * move a record backwards, and an edge's register report is the source of truth on reconnect.
 */
import type { SyncConfig } from '../common/config/schema.js'
import { isSyncError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { DeliveryRecord, DeliveryUpdate, DestinationKey, NodeRecord, ObjectKey, ObjectMetadata, StoredObject } from '../common/model.js'
import { decodeUp, encode, type DownMessage, type Holding, type UpMessage } from '../common/protocol/messages.js'
import { downTopic, nodeUsername, orgDownTopic, parseNodeUsername, parseUpTopic } from '../common/protocol/topics.js'
import type { OrgSigningKeys } from '../security/index.js'
import { readBlob, storeVerifiedFile, type Store } from '../storage/index.js'
import type { CloudTransport } from '../transport/index.js'
import { broadcastTopic, isAddressedTo } from './addressing.js'
import type { StatusWriter } from './status-writer.js'
import { ChunkServer } from '../transfer/chunk-server.js'
import { TransferManager } from '../transfer/receiver.js'

export interface SyncCounters {
  received: number
  dropped: number
  published: number
}

const ENCODED_CACHE_ENTRIES = 256

const HOLDING_TO_STATUS = { received: 'delivered', consumed: 'consumed', deleted: 'deleted', error: 'error' } as const

function fromNode (node: DestinationKey): { originType: string, originID: string } {
  return { originType: node.destinationType, originID: node.destinationId }
}

function originOf (m: ObjectMetadata): DestinationKey {
  return { orgId: m.destinationOrgID, destinationType: m.originType ?? '', destinationId: m.originID ?? '' }
}

export class CloudSync {
  readonly counters: SyncCounters = { received: 0, dropped: 0, published: 0 }
  readonly #store: Store
  readonly #transport: CloudTransport
  readonly #status: StatusWriter
  readonly #cfg: Readonly<SyncConfig>
  readonly #log: Logger
  readonly #encoded = new Map<string, Buffer>()
  readonly chunks: ChunkServer
  /** What delete-on-delivery does (set by the composition root: delete the object everywhere). */
  onAllConsumed: (key: ObjectKey) => Promise<void> = async () => {}
  /** Called with each final verdict of an edge on an instance (consumed or error). */
  onOutcome: (node: DestinationKey, ack: { objectType: string, objectId: string, instanceId: number, state: string, message?: string }) => Promise<void> = async () => {}
  /** Called after a node registered and was resynced (the EMS service sends a new edge its config). */
  onRegistered: (node: DestinationKey) => Promise<void> = async () => {}

  /** Pulls the data of objects that edges offer (edge to cloud). */
  readonly uplink: TransferManager

  /** Signs every instance sent to edges with its org's key. */
  readonly signer: OrgSigningKeys

  constructor (store: Store, transport: CloudTransport, status: StatusWriter, cfg: Readonly<SyncConfig>, log: Logger, transferDir: string, signer: OrgSigningKeys) {
    this.signer = signer
    this.chunks = new ChunkServer(store, {
      maxConcurrent: cfg.MaxConcurrentTransfers,
      idleMs: 30_000,
      reply: async (peer, payload, qos) => {
        const node = parseNodeUsername(peer)
        if (node !== undefined) await transport.publish(downTopic(node), payload, qos)
      }
    }, log.child({ component: 'css.transfers' }))
    this.uplink = new TransferManager({
      dir: transferDir,
      window: cfg.TransferWindow,
      timeoutMs: cfg.TransferTimeoutSeconds * 1000,
      maxConcurrent: cfg.MaxConcurrentTransfers,
      // Never awaited: this may run inside a broker message handler.
      send: (msg, meta) => { transport.publish(downTopic(originOf(meta)), encode(msg)).catch((err: unknown) => { log.warn('Fetch to an edge not sent; the timeout asks again', { err }) }) },
      complete: async (meta, file, sha256) => {
        const blob = await storeVerifiedFile(store.blobs, file, { size: meta.objectSize, sha256 })
        await this.#storeEdgeObject(meta, blob.ref)
      },
      failed: (meta, message) => { log.warn('An edge object failed its data check', { objectId: meta.objectID, origin: meta.originID, message }) },
      log: log.child({ component: 'css.uplink' })
    })
    this.#store = store
    this.#transport = transport
    this.#status = status
    this.#cfg = cfg
    this.#log = log
  }

  /** Every node of the org the object is addressed to (paged through the node store). */
  async targets (obj: StoredObject): Promise<NodeRecord[]> {
    const out: NodeRecord[] = []
    const m = obj.meta
    const query = { orgId: obj.key.orgId, ...(m.destinationType !== undefined && m.destinationType !== '' && (m.destinationsList ?? []).length === 0 ? { destinationType: m.destinationType } : {}) }
    let cursor: string | undefined
    do {
      const page = await this.#store.nodes.list({ ...query, limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
      for (const n of page.items) if (isAddressedTo(m, obj.key.orgId, n)) out.push(n)
      cursor = page.next
    } while (cursor !== undefined)
    return out
  }

  /**
   * The encoded update for an object instance, or why it cannot be sent. Encoded once per instance:
   * a reconnect storm would otherwise read and encode the same data once per registering node.
   */
  async #updatePayload (obj: StoredObject): Promise<{ payload?: Buffer, error?: string }> {
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
    const payload = encode(msg)
    // Inline payloads are small (MaxInlineDataSize), so a bounded map is enough; oldest out first.
    if (this.#encoded.size >= ENCODED_CACHE_ENTRIES) this.#encoded.delete(this.#encoded.keys().next().value as string)
    this.#encoded.set(cacheKey, payload)
    return { payload }
  }

  /** Sends the current instance of an object to every destination it is addressed to. */
  async publish (obj: StoredObject): Promise<number> {
    const key = obj.key
    const targets = await this.targets(obj)
    const rec = (n: DestinationKey, status: DeliveryUpdate['status'], detail?: string, message?: string): DeliveryUpdate => ({
      ...key,
      destinationType: n.destinationType,
      destinationId: n.destinationId,
      instanceId: obj.meta.instanceID,
      status,
      ...(detail === undefined ? {} : { detail }),
      ...(message === undefined ? {} : { message })
    })
    if (obj.meta.deleted === true) {
      await this.#sendAll(obj, targets, encode({ v: 1, kind: 'delete', objectType: key.objectType, objectId: key.objectId, instanceId: obj.meta.instanceID }))
      return targets.length
    }
    if (obj.meta.inactive === true || obj.status !== 'ready') {
      await this.#status.deliveries(targets.map((n) => rec(n, 'pending', obj.meta.inactive === true ? 'inactive' : 'waiting for data')))
      return targets.length
    }
    const { payload, error } = await this.#updatePayload(obj)
    if (payload === undefined) {
      await this.#status.deliveries(targets.map((n) => rec(n, 'error', 'rejected: data missing', error)))
      return targets.length
    }
    await this.#status.deliveries(targets.map((n) => rec(n, 'delivering', 'sent')))
    await this.#sendAll(obj, targets, payload)
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

  /** Entry point for every ESS message; never throws. */
  async onMessage (topic: string, payload: Buffer): Promise<void> {
    this.counters.received++
    const node = parseUpTopic(topic)
    let msg: UpMessage
    try {
      if (node === undefined) throw new Error('Unknown topic')
      msg = decodeUp(payload)
    } catch (err) {
      this.counters.dropped++
      this.#log.warn('Dropped a malformed ESS message', { err, topic: topic.slice(0, 200), bytes: payload.length })
      return
    }
    const log = this.#log.child({ node: `${node.orgId}/${node.destinationType}/${node.destinationId}`, kind: msg.kind })
    try {
      switch (msg.kind) {
        case 'register': await this.#onRegister(node, msg.properties, msg.codeVersion, msg.holdings, log); break
        case 'heartbeat': await this.#status.touch(node, true, msg.status !== undefined && Object.keys(msg.status).length > 0 ? msg.status : undefined); break
        case 'ack': await this.#onAck(node, msg, log); break
        case 'fetch': await this.chunks.onFetch(nodeUsername(node), node.orgId, msg); break
        case 'offer': await this.#onOffer(node, msg, log); break
        case 'chunk': await this.uplink.onChunk(node.orgId, msg, fromNode(node)); break
        case 'busy': this.uplink.onBusy(node.orgId, msg, fromNode(node)); break
        case 'gone': await this.uplink.onGone(node.orgId, msg, fromNode(node)); break
        case 'progress':
          await this.#status.deliveries([{ objectType: msg.objectType, objectId: msg.objectId, ...node, instanceId: msg.instanceId, status: 'delivering', detail: msg.detail ?? 'receiving', bytes: msg.bytes }])
          break
      }
    } catch (err) {
      if (isSyncError(err) && err.code === 'SYNC_ERR_PROTOCOL') this.counters.dropped++
      log.error('Cannot handle an ESS message', { err })
    }
  }

  async #onRegister (node: DestinationKey, properties: Record<string, string>, codeVersion: string, holdings: Holding[], log: Logger): Promise<void> {
    const prev = await this.#store.nodes.get(node)
    const now = new Date().toISOString()
    await this.#store.nodes.upsert({ ...node, properties, codeVersion, protocol: 'mqtt', online: true, registeredAt: prev?.registeredAt ?? now, lastHeartbeat: now })
    const held = new Map(holdings.map((h) => [`${h.objectType}/${h.objectId}`, h]))
    // What the edge reports it holds is the truth: it rebuilds any status a crash lost.
    await this.#status.deliveries(holdings.map((h) => ({ ...node, objectType: h.objectType, objectId: h.objectId, instanceId: h.instanceId, status: HOLDING_TO_STATUS[h.state], ...(h.state === 'error' ? { detail: 'rejected', message: h.message ?? 'refused by a plugin' } : {}) })))
    // Collect first, then one status batch and the publishes: awaiting a group commit per resent
    // object would make a node with many missing objects wait a commit window for each.
    const updates: DeliveryUpdate[] = []
    const sends: Buffer[] = []
    const nodeRec = { ...node, properties }
    let cursor: string | undefined
    do {
      const page = await this.#store.objects.list({ orgId: node.orgId, limit: 500, ...(cursor === undefined ? {} : { cursor }) })
      for (const obj of page.items) {
        if (!isAddressedTo(obj.meta, node.orgId, nodeRec)) continue
        const h = held.get(`${obj.key.objectType}/${obj.key.objectId}`)
        if (obj.meta.deleted === true) {
          if (h !== undefined && h.state !== 'deleted') sends.push(encode({ v: 1, kind: 'delete', objectType: obj.key.objectType, objectId: obj.key.objectId, instanceId: obj.meta.instanceID }))
          continue
        }
        if (obj.status !== 'ready' || obj.meta.inactive === true) continue
        if (h !== undefined && h.instanceId >= obj.meta.instanceID) continue
        const { payload, error } = await this.#updatePayload(obj)
        const base = { ...obj.key, ...node, instanceId: obj.meta.instanceID }
        if (payload === undefined) {
          updates.push({ ...base, status: 'error', detail: 'rejected: data missing', ...(error === undefined ? {} : { message: error }) })
          continue
        }
        updates.push({ ...base, status: 'delivering', detail: 'resent on register' })
        sends.push(payload)
      }
      cursor = page.next
    } while (cursor !== undefined)
    await this.#status.deliveries(updates)
    // After a key rotation, a node that missed the announcement learns the new key first.
    const trust = await this.signer.currentTrust(node.orgId)
    if (trust.trustSig !== undefined) await this.#transport.publish(downTopic(node), encode({ v: 1, kind: 'trust', publicKey: trust.publicKey, sig: trust.trustSig }))
    for (const p of sends) await this.#transport.publish(downTopic(node), p)
    const resent = sends.length
    await this.#transport.publish(downTopic(node), encode({ v: 1, kind: 'registered', resent }))
    log.info('Node registered', { holdings: holdings.length, resent })
    await this.onRegistered(node)
  }

  async #onAck (node: DestinationKey, msg: Extract<UpMessage, { kind: 'ack' }>, log: Logger): Promise<void> {
    this.chunks.finished(nodeUsername(node), msg)
    const key: ObjectKey = { orgId: node.orgId, objectType: msg.objectType, objectId: msg.objectId }
    const status = msg.state === 'received' ? 'delivered' : msg.state
    await this.#status.deliveries([{ ...key, ...node, instanceId: msg.instanceId, status, ...(msg.state === 'error' ? { detail: 'rejected', message: msg.message ?? 'error' } : {}) }])
    if (msg.state === 'error') log.warn('Edge reported a delivery error', { objectId: msg.objectId, message: msg.message })
    if (msg.state === 'deleted') await this.#removeIfAllDeleted(key)
    if (msg.state === 'consumed') await this.#deleteIfAllConsumed(key)
    if (msg.state === 'consumed' || msg.state === 'error') await this.onOutcome(node, msg)
  }

  /** Edge to cloud: an edge offers an object it created; small data inline, else we pull it. */
  async #onOffer (node: DestinationKey, msg: Extract<UpMessage, { kind: 'offer' }>, log: Logger): Promise<void> {
    const key: ObjectKey = { orgId: node.orgId, objectType: msg.meta.objectType, objectId: msg.meta.objectID }
    const cur = await this.#store.objects.get(key)
    const origin = fromNode(node)
    if (cur !== undefined && cur.meta.deleted !== true && (cur.meta.originType !== origin.originType || cur.meta.originID !== origin.originID)) {
      this.counters.dropped++
      log.warn('Refused an edge object: an object of another origin has this name', { objectId: key.objectId })
      return
    }
    if (cur !== undefined && (cur.meta.originInstanceID ?? 0) >= msg.meta.instanceID) {
      await this.sendState(cur, 'stored') // a repeated offer: the edge missed our answer
      return
    }
    // The edge names only its own org and itself as the origin; addressing fields are dropped.
    const { destinationID: _d, destinationType: _t, destinationsList: _l, destinationSelector: _s, ...rest } = msg.meta
    const meta = { ...rest, destinationOrgID: node.orgId, ...origin }
    if (msg.data !== undefined) {
      const blob = await this.#store.blobs.write([Buffer.from(msg.data, 'base64')], { maxSize: this.#cfg.MaxDataSize })
      if (meta.dataHash !== undefined && blob.sha256 !== meta.dataHash) {
        await this.#store.blobs.remove(blob.ref)
        log.warn('Refused an edge object: inline data does not match its hash', { objectId: key.objectId })
        return
      }
      await this.#storeEdgeObject(meta, blob.ref)
    } else if (meta.objectSize === 0 || meta.noData === true) {
      await this.#storeEdgeObject(meta, undefined)
    } else {
      await this.uplink.start(meta, msg.chunkSize ?? this.#cfg.ChunkSize)
    }
  }

  async #storeEdgeObject (meta: ObjectMetadata, dataRef: string | undefined): Promise<void> {
    const key: ObjectKey = { orgId: meta.destinationOrgID, objectType: meta.objectType, objectId: meta.objectID }
    const { instanceID, created: _c, lastUpdate: _u, ...draft } = meta
    const obj = await this.#store.objects.put(key, () => ({ meta: { ...draft, originInstanceID: instanceID }, status: 'completelyReceived', ...(dataRef === undefined ? {} : { dataRef }) }))
    await this.sendState(obj, 'stored')
  }

  /** Rotates an org's signing key and tells its nodes to trust the new one (signed by the old). */
  async rotateKey (orgId: string): Promise<string> {
    const r = await this.signer.rotate(orgId)
    this.#encoded.clear()
    await this.#transport.publish(orgDownTopic(orgId), encode({ v: 1, kind: 'trust', publicKey: r.publicKey, sig: r.trustSig }))
    return r.publicKey
  }

  /** Tells the edge an object came from how the CSS side stands: stored, or consumed by an app. */
  async sendState (obj: StoredObject, state: 'stored' | 'consumed'): Promise<void> {
    const m = obj.meta
    if (m.originType === undefined || m.originID === undefined || m.originInstanceID === undefined) return
    await this.#transport.publish(downTopic(originOf(m)), encode({ v: 1, kind: 'state', state, objectType: m.objectType, objectId: m.objectID, instanceId: m.originInstanceID }))
  }

  /** Whether the object has delivery records and every one satisfies `ok` (after pending status writes). */
  async #everyDelivery (key: ObjectKey, ok: (d: DeliveryRecord) => boolean): Promise<boolean> {
    await this.#status.drain()
    let cursor: string | undefined
    let any = false
    do {
      const page = await this.#store.deliveries.listByObject(key, { limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
      if (!page.items.every(ok)) return false
      any ||= page.items.length > 0
      cursor = page.next
    } while (cursor !== undefined)
    return any
  }

  /** Delete-on-delivery (`autodelete`): once every destination consumed the current instance. */
  async #deleteIfAllConsumed (key: ObjectKey): Promise<void> {
    const obj = await this.#store.objects.get(key)
    if (obj === undefined || obj.meta.autodelete !== true || obj.meta.deleted === true) return
    if (await this.#everyDelivery(key, (d) => d.instanceId === obj.meta.instanceID && d.status === 'consumed')) await this.onAllConsumed(key)
  }

  /** A deleted object leaves the CSS once every destination confirmed (no lingering, unlike Open Horizon #71). */
  async #removeIfAllDeleted (key: ObjectKey): Promise<void> {
    const obj = await this.#store.objects.get(key)
    if (obj?.meta.deleted !== true) return
    if (await this.#everyDelivery(key, (d) => d.status === 'deleted' && d.instanceId >= obj.meta.instanceID)) await this.removeObject(key)
  }

  async removeObject (key: ObjectKey): Promise<void> {
    const refs = await this.#store.objects.remove(key)
    await this.#store.deliveries.removeByObject(key)
    for (const r of refs) await this.#store.blobs.remove(r)
  }
}
