/**
 * The ESS side of the protocol: registration with what it holds, updates (inline or pulled in
 * chunks), deletes, and acks back to the CSS. Handlers are idempotent and never move an object
 * backwards.
 */
import type { Logger } from '../common/log.js'
import type { DestinationKey, ObjectKey, ObjectMetadata, StoredObject } from '../common/model.js'
import { deleteStatement } from '../common/protocol/statements.js'
import { decodeDown, encode, encodeChunk, type DownMessage, type Holding, type UpMessage } from '../common/protocol/messages.js'
import { upTopic } from '../common/protocol/topics.js'
import { readBlob, storeVerifiedFile, type Store } from '../storage/index.js'
import type { MqttConnection } from '../transport/index.js'
import type { Notifier } from './notifier.js'
import { ChunkServer } from '../transfer/chunk-server.js'
import { TransferManager } from '../transfer/receiver.js'
import type { TrustStore } from './trust.js'

const CODE_VERSION = '0.1.0'
const DEFAULT_CHUNK_SIZE = 262144

export const STATE_OF: Partial<Record<StoredObject['status'], Holding['state']>> = {
  completelyReceived: 'received', objreceived: 'received', objconsumed: 'consumed'
}

export function parseProperties (s: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of s.split(',').map((p) => p.trim()).filter(Boolean)) {
    const i = pair.indexOf('=')
    if (i > 0) out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim()
  }
  return out
}

export interface EdgeSyncOptions {
  /** Folder of partial transfers (part files and checkpoints). */
  transferDir: string
  window: number
  timeoutMs: number
  /** Edge-to-cloud objects with at most this much data go inline in the offer. */
  maxInline: number
  chunkSize: number
  /** Verifies signatures when set (the enrolled org key plus keys learned on rotation). */
  trust?: TrustStore
  /** First wait for the CSS's answer to a register before sending it again (doubles to 60 s). */
  registerRetryMs?: number
}

const REGISTER_RETRY_MS = 5000
const REGISTER_RETRY_MAX_MS = 60_000

/** Where the delivery records of edge-to-cloud objects point. */
export const CLOUD = { destinationType: 'cloud', destinationId: 'css' } as const

export class EdgeSync {
  dropped = 0
  conn: MqttConnection | undefined
  notifier: Notifier | undefined
  properties: Record<string, string> = {}
  readonly transfers: TransferManager
  /** Called for every new instance stored (the plugin host hands it to its plugin). */
  onAccepted: (meta: ObjectMetadata) => void = () => {}
  /** Why a plugin refused this instance, if it did. */
  refusal: (objectType: string, objectId: string, instanceId: number) => string | undefined = () => undefined
  /** What the plugins report (in heartbeats and the local health). */
  pluginStatus: () => Record<string, Record<string, unknown>> = () => ({})
  /** Serves the CSS the chunks of objects created on this edge. */
  readonly chunks: ChunkServer
  readonly #opts: EdgeSyncOptions
  readonly #store: Store
  readonly #node: DestinationKey
  get node (): DestinationKey { return this.#node }
  readonly #log: Logger
  readonly #consumers = new Map<string, number>()
  #registerTimer: NodeJS.Timeout | undefined
  #registerDelay = REGISTER_RETRY_MS

  constructor (store: Store, node: DestinationKey, opts: EdgeSyncOptions, log: Logger) {
    this.#store = store
    this.#node = node
    this.#log = log
    this.#opts = opts
    this.chunks = new ChunkServer(store, { maxConcurrent: 8, idleMs: 30_000, reply: async (_peer, payload, qos) => { await this.conn?.publish(upTopic(node), payload, qos) } }, log.child({ component: 'ess.chunks' }))
    this.transfers = new TransferManager({
      dir: opts.transferDir,
      window: opts.window,
      timeoutMs: opts.timeoutMs,
      maxConcurrent: 2,
      send: (msg) => { this.sendSoon(msg) },
      complete: async (meta, file, sha256) => { await this.#completeTransfer(meta, file, sha256) },
      failed: (meta, message) => { this.sendSoon({ v: 1, kind: 'ack', state: 'error', objectType: meta.objectType, objectId: meta.objectID, instanceId: meta.instanceID, message }) },
      log: log.child({ component: 'ess.transfer' })
    })
  }

  /**
   * Counts one app's consumed mark; true once `consumers` apps (default 1) consumed this instance.
   * The count is kept in memory: after an ESS restart the remaining apps' marks count again.
   */
  countConsumer (o: StoredObject): boolean {
    const expected = o.meta.consumers ?? 1
    if (expected <= 1) return true
    const k = `${o.key.objectType}/${o.key.objectId}#${o.meta.instanceID}`
    const n = (this.#consumers.get(k) ?? 0) + 1
    if (n >= expected) { this.#consumers.delete(k); return true }
    this.#consumers.set(k, n)
    return false
  }

  key (objectType: string, objectId: string): ObjectKey { return { orgId: this.#node.orgId, objectType, objectId } }

  async send (msg: UpMessage): Promise<void> {
    if (msg.kind === 'chunk') await this.conn?.publish(upTopic(this.#node), encodeChunk(msg), 0)
    else await this.conn?.publish(upTopic(this.#node), encode(msg))
  }

  /**
   * Sends without waiting for the PUBACK. Used inside message handlers: mqtt.js delivers no further
   * packets (PUBACKs included) until the handler returns, so awaiting there would deadlock. The
   * state is already durable locally, and the register report on reconnect repeats it.
   */
  sendSoon (msg: UpMessage): void {
    this.send(msg).catch((err: unknown) => { this.#log.warn('Message to the CSS not sent; the next register report repeats it', { err, kind: msg.kind }) })
  }

  /** Around a resync: `hold` at register, `release` when the CSS answered (plugins wait in between). */
  settle: { hold: () => void, release: () => void } = { hold: () => {}, release: () => {} }

  /**
   * Tells the CSS who we are and what we hold; it answers with whatever we miss. Sent again, with
   * backoff and jitter, until the CSS answers: a register published while no CSS was subscribed
   * (a broker restarted without persistence) is lost, and nothing else would ever repeat it.
   */
  async register (): Promise<void> {
    this.settle.hold()
    this.#registerDelay = this.#opts.registerRetryMs ?? REGISTER_RETRY_MS
    await this.#sendRegister()
  }

  async #sendRegister (): Promise<void> {
    clearTimeout(this.#registerTimer)
    this.#registerTimer = undefined
    await this.send({ v: 1, kind: 'register', properties: this.properties, codeVersion: CODE_VERSION, holdings: await this.holdings() })
    const wait = Math.round(this.#registerDelay * (0.75 + Math.random() * 0.5))
    this.#registerTimer = setTimeout(() => {
      this.#registerTimer = undefined
      if (this.conn?.connected !== true) return // the next connect registers anyway
      this.#log.warn('No answer to register yet; registering again', { waitedMs: wait })
      this.#registerDelay = Math.min(this.#registerDelay * 2, REGISTER_RETRY_MAX_MS)
      this.#sendRegister().catch((err: unknown) => { this.#log.warn('Register not sent', { err }) })
    }, wait)
    this.#registerTimer.unref()
  }

  /** Stops the register retries (the service is closing). */
  close (): void {
    clearTimeout(this.#registerTimer)
    this.#registerTimer = undefined
  }

  async holdings (): Promise<Holding[]> {
    const out: Holding[] = []
    let cursor: string | undefined
    do {
      const page = await this.#store.objects.list({ orgId: this.#node.orgId, limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
      for (const o of page.items) {
        const state = o.meta.deleted === true ? undefined : STATE_OF[o.status]
        if (state === undefined) continue
        // A version a plugin refused stays refused in the CSS's eyes after a reconnect.
        const refused = this.refusal(o.key.objectType, o.key.objectId, o.meta.instanceID)
        out.push({ objectType: o.key.objectType, objectId: o.key.objectId, instanceId: o.meta.instanceID, ...(refused === undefined ? { state } : { state: 'error', message: refused }) })
      }
      cursor = page.next
    } while (cursor !== undefined)
    return out
  }

  async onMessage (_topic: string, payload: Buffer): Promise<void> {
    let msg: DownMessage
    try {
      msg = decodeDown(payload)
    } catch (err) {
      this.dropped++
      this.#log.warn('Dropped a malformed CSS message', { err, bytes: payload.length })
      return
    }
    switch (msg.kind) {
      case 'registered':
        clearTimeout(this.#registerTimer)
        this.#registerTimer = undefined
        this.#log.info('Registered with the CSS', { resent: msg.resent })
        this.settle.release()
        return
      case 'reregister': {
        // Spread over the window the CSS asks for: a whole fleet must not register at once.
        const timer = setTimeout(() => { this.register().catch((err: unknown) => { this.#log.warn('Register not sent', { err }) }) }, Math.random() * msg.withinMs)
        timer.unref()
        return
      }
      case 'update': await this.#onUpdate(msg); return
      case 'delete': await this.#onDelete(msg); return
      case 'chunk': await this.transfers.onChunk(this.#node.orgId, msg); return
      case 'busy': this.transfers.onBusy(this.#node.orgId, msg); return
      case 'gone': await this.transfers.onGone(this.#node.orgId, msg); return
      case 'fetch': await this.chunks.onFetch('css', this.#node.orgId, msg); return
      case 'state': await this.#onState(msg); return
      case 'trust': await this.#onTrust(msg)
    }
  }

  async #onTrust (msg: Extract<DownMessage, { kind: 'trust' }>): Promise<void> {
    const t = this.#opts.trust
    if (t === undefined) return
    if (await t.learn(this.#node.orgId, msg.publicKey, msg.sig)) this.#log.info('Trusting a new signing key (rotation)', { keyId: msg.publicKey.split(':')[0] })
    else this.#log.warn('Refused a signing key announcement that no trusted key signed')
  }

  async #onUpdate (msg: Extract<DownMessage, { kind: 'update' }>): Promise<void> {
    const meta = msg.meta
    const key = this.key(meta.objectType, meta.objectID)
    if (this.#opts.trust !== undefined && !this.#opts.trust.verify(meta, msg.sig)) {
      // Nothing of a forged or tampered object reaches an app; the CSS sees why.
      this.#log.warn('Rejected an object whose signature does not verify', { objectId: meta.objectID, instanceId: meta.instanceID, keyId: msg.sig?.keyId })
      this.sendSoon({ v: 1, kind: 'ack', state: 'error', objectType: key.objectType, objectId: key.objectId, instanceId: meta.instanceID, message: 'rejected: bad signature' })
      return
    }
    const cur = await this.#store.objects.get(key)
    if (cur !== undefined && cur.meta.instanceID >= meta.instanceID) {
      // Duplicate or reordered: never move backwards, but tell the CSS what we hold.
      const state = STATE_OF[cur.status]
      if (state !== undefined) this.sendSoon({ v: 1, kind: 'ack', state, objectType: key.objectType, objectId: key.objectId, instanceId: cur.meta.instanceID })
      return
    }
    let dataRef: string | undefined
    if (msg.data !== undefined) {
      const blob = await this.#store.blobs.write([Buffer.from(msg.data, 'base64')])
      if (meta.dataHash !== undefined && blob.sha256 !== meta.dataHash) {
        await this.#store.blobs.remove(blob.ref)
        this.sendSoon({ v: 1, kind: 'ack', state: 'error', objectType: key.objectType, objectId: key.objectId, instanceId: meta.instanceID, message: 'rejected: data hash mismatch' })
        return
      }
      dataRef = blob.ref
    } else if (meta.dataID !== 0 && cur?.dataRef !== undefined && cur.meta.dataID === meta.dataID) {
      dataRef = cur.dataRef // metadata-only change: the data we hold is still current
    } else if (meta.objectSize > 0 && meta.noData !== true) {
      // Too large to travel inline: pull it in chunks; the object is stored once the data is verified.
      await this.transfers.start(meta, msg.chunkSize ?? DEFAULT_CHUNK_SIZE)
      return
    }
    await this.#accept(cur, meta, dataRef)
  }

  async #completeTransfer (meta: ObjectMetadata, file: string, sha256: string): Promise<void> {
    const key = this.key(meta.objectType, meta.objectID)
    const cur = await this.#store.objects.get(key)
    if (cur !== undefined && cur.meta.instanceID >= meta.instanceID) return
    // The verified part file becomes the object's data by a rename where the store can (no copy).
    const blob = await storeVerifiedFile(this.#store.blobs, file, { size: meta.objectSize, sha256 })
    if (meta.dataHash !== undefined && blob.sha256 !== meta.dataHash) {
      // The part file was verified a moment ago: a mismatch here means the local disk is failing.
      await this.#store.blobs.remove(blob.ref)
      this.sendSoon({ v: 1, kind: 'ack', state: 'error', objectType: key.objectType, objectId: key.objectId, instanceId: meta.instanceID, message: 'rejected: data changed while stored locally' })
      return
    }
    await this.#accept(cur, meta, blob.ref)
  }

  async #accept (cur: StoredObject | undefined, meta: ObjectMetadata, dataRef: string | undefined): Promise<void> {
    const key = this.key(meta.objectType, meta.objectID)
    try {
      await this.#store.objects.put(key, () => ({ meta: { ...meta }, status: 'completelyReceived', ...(dataRef === undefined ? {} : { dataRef }) }), { instanceId: meta.instanceID })
    } catch (err) {
      if (dataRef !== undefined && dataRef !== cur?.dataRef) await this.#store.blobs.remove(dataRef)
      if ((err as { code?: string }).code === 'SYNC_ERR_CONFLICT') return // a newer instance landed meanwhile
      throw err
    }
    this.sendSoon({ v: 1, kind: 'ack', state: 'received', objectType: key.objectType, objectId: key.objectId, instanceId: meta.instanceID })
    this.notifier?.notify('update', meta)
    this.onAccepted(meta)
  }

  /** Edge to cloud: offers an object created on this edge to the CSS (small data inline). */
  async offer (obj: StoredObject): Promise<void> {
    const m = obj.meta
    let data: string | undefined
    if (obj.dataRef !== undefined && m.objectSize > 0 && m.objectSize <= this.#opts.maxInline) {
      const bytes = await readBlob(this.#store.blobs, obj.dataRef)
      if (bytes === undefined) throw new Error(`Data of ${m.objectType}/${m.objectID} is missing locally`)
      data = bytes.toString('base64')
    }
    await this.#store.deliveries.upsertMany([{ ...obj.key, ...CLOUD, instanceId: m.instanceID, status: 'delivering', detail: 'offered' }])
    this.sendSoon({ v: 1, kind: 'offer', meta: m, ...(data === undefined ? {} : { data }), chunkSize: this.#opts.chunkSize })
  }

  /** After every (re)connect: offers again each edge object the CSS has not confirmed. */
  async reoffer (): Promise<void> {
    let cursor: string | undefined
    do {
      const page = await this.#store.objects.list({ orgId: this.#node.orgId, statuses: ['ready'], limit: 500, ...(cursor === undefined ? {} : { cursor }) })
      for (const o of page.items) {
        if (o.meta.originType !== this.#node.destinationType || o.meta.originID !== this.#node.destinationId) continue
        const d = await this.#store.deliveries.get(o.key, { orgId: this.#node.orgId, ...CLOUD })
        if (d !== undefined && d.instanceId === o.meta.instanceID && (d.status === 'delivered' || d.status === 'consumed')) continue
        await this.offer(o)
      }
      cursor = page.next
    } while (cursor !== undefined)
  }

  async #onState (msg: Extract<DownMessage, { kind: 'state' }>): Promise<void> {
    const key = this.key(msg.objectType, msg.objectId)
    this.chunks.finished('css', msg)
    await this.#store.deliveries.upsertMany([{ ...key, ...CLOUD, instanceId: msg.instanceId, status: msg.state === 'stored' ? 'delivered' : 'consumed' }])
  }

  async #onDelete (msg: Extract<DownMessage, { kind: 'delete' }>): Promise<void> {
    const key = this.key(msg.objectType, msg.objectId)
    const ids = { objectType: msg.objectType, objectId: msg.objectId, instanceId: msg.instanceId }
    if (this.#opts.trust !== undefined && !this.#opts.trust.verifyStatement(deleteStatement(this.#node.orgId, ids), msg.sig)) {
      // An unsigned or forged delete is not obeyed; the CSS sees why.
      this.#log.warn('Refused a delete whose signature does not verify', { objectId: msg.objectId, instanceId: msg.instanceId })
      this.sendSoon({ v: 1, kind: 'ack', state: 'error', ...ids, message: 'rejected: bad signature on delete' })
      return
    }
    await this.transfers.cancel(this.#node.orgId, msg.objectType, msg.objectId)
    const cur = await this.#store.objects.get(key)
    if (cur !== undefined && cur.meta.instanceID < msg.instanceId) {
      const gone = await this.#store.objects.put(key, (c) => ({ meta: { ...(c ?? cur).meta, deleted: true }, status: 'objdeleted' }), { instanceId: msg.instanceId })
      this.notifier?.notify('delete', gone.meta)
    }
    this.sendSoon({ v: 1, kind: 'ack', state: 'deleted', objectType: key.objectType, objectId: key.objectId, instanceId: msg.instanceId })
  }
}
