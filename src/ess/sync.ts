/**
 * The ESS side of the protocol: registration with what it holds, updates (inline or pulled in
 * chunks), deletes, and acks back to the CSS. Each CSS message kind has its handler in
 * `handlers/`; this class builds their context and offers this edge's own objects to the CSS.
 */
import { createHash } from 'node:crypto'
import type { Logger } from '../common/log.js'
import type { DestinationKey, ObjectKey, StoredObject } from '../common/model.js'
import { decodeDown, type DownMessage, type Holding } from '../common/protocol/messages.js'
import { readBlob, type Store } from '../storage/index.js'
import { ChunkServer } from '../transfer/chunk-server.js'
import { TransferManager } from '../transfer/receiver.js'
import { StorageError } from '../common/errors.js'
import {
  CLOUD,
  EDGE_HANDLERS,
  STATE_OF,
  completeTransfer,
  type EdgeContext,
  type Notices,
  type PluginGate
} from './handlers/index.js'
import { Registration } from './registration.js'
import type { TrustStore } from './trust.js'
import type { Uplink } from './uplink.js'

/** Objects up to this size are hashed from the store at each register (drift of content). */
const HASH_HELD_UP_TO = 1024 * 1024

export { CLOUD, STATE_OF }
export type { Notices, PluginGate }

export function parseProperties (s: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of s
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const i = pair.indexOf('=')
    if (i > 0) out[pair.slice(0, i).trim()] = pair.slice(i + 1).trim()
  }
  return out
}

export interface EdgeSyncOptions {
  store: Store
  node: DestinationKey
  /** The way to the CSS; the sync publishes through it from the start (it fails while offline). */
  up: Uplink
  notices: Notices
  plugins: PluginGate
  /** Sent in every register (`NodeProperties`). */
  properties?: Readonly<Record<string, string>>
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
  log: Logger
}

export class EdgeSync {
  /** Malformed CSS messages dropped since start. */
  dropped = 0
  readonly transfers: TransferManager
  /** Serves the CSS the chunks of objects created on this edge. */
  readonly chunks: ChunkServer
  readonly registration: Registration
  readonly up: Uplink
  readonly notices: Notices
  readonly plugins: PluginGate
  readonly #o: EdgeSyncOptions
  readonly #ctx: EdgeContext
  readonly #log: Logger
  readonly #consumers = new Map<string, number>()

  constructor (opts: EdgeSyncOptions) {
    this.#o = opts
    this.#log = opts.log
    this.up = opts.up
    this.notices = opts.notices
    this.plugins = opts.plugins
    const log = opts.log
    this.chunks = new ChunkServer(
      opts.store,
      {
        maxConcurrent: 8,
        idleMs: 30_000,
        reply: async (_peer, payload, qos) => {
          await opts.up.sendRaw(payload, qos)
        }
      },
      log.child({ component: 'ess.chunks' })
    )
    this.transfers = new TransferManager({
      dir: opts.transferDir,
      window: opts.window,
      timeoutMs: opts.timeoutMs,
      maxConcurrent: 2,
      send: (msg) => {
        opts.up.sendSoon(msg)
      },
      complete: async (meta, file, sha256) => {
        await completeTransfer(this.#ctx, meta, file, sha256)
      },
      failed: (meta, message) => {
        const ids = { objectType: meta.objectType, objectId: meta.objectID, instanceId: meta.instanceID }
        opts.up.sendSoon({ v: 1, kind: 'ack', state: 'error', ...ids, message })
      },
      log: log.child({ component: 'ess.transfer' })
    })
    this.registration = new Registration({
      up: opts.up,
      holdings: async () => await this.holdings(),
      properties: opts.properties ?? {},
      gate: opts.plugins,
      retryMs: opts.registerRetryMs,
      log
    })
    this.#ctx = {
      store: opts.store,
      node: opts.node,
      up: opts.up,
      trust: opts.trust,
      transfers: this.transfers,
      chunks: this.chunks,
      registration: this.registration,
      notices: opts.notices,
      plugins: opts.plugins,
      chunkSize: opts.chunkSize,
      heartbeat: () => {
        this.heartbeatSoon()
      }
    }
  }

  /** Alive, with the dropped-message count and what the plugins report. */
  async heartbeat (): Promise<void> {
    await this.#o.up.send({ v: 1, kind: 'heartbeat', errors: this.dropped, status: this.#o.plugins.status() })
  }

  #beatTimer: NodeJS.Timeout | undefined
  /**
   * A heartbeat shortly (coalesced): after a connect, a plugin's verdict or a lifecycle change,
   * so the fleet view shows the version in force and plugin states without waiting a period.
   */
  heartbeatSoon (): void {
    if (this.#beatTimer !== undefined) return
    this.#beatTimer = setTimeout(() => {
      this.#beatTimer = undefined
      this.heartbeat().catch(() => {})
    }, 250)
    this.#beatTimer.unref()
  }

  get node (): DestinationKey {
    return this.#o.node
  }

  key (objectType: string, objectId: string): ObjectKey {
    return { orgId: this.#o.node.orgId, objectType, objectId }
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
    if (n >= expected) {
      this.#consumers.delete(k)
      return true
    }
    this.#consumers.set(k, n)
    return false
  }

  /** Tells the CSS who we are and what we hold; it answers with whatever we miss. */
  async register (): Promise<void> {
    await this.registration.register()
  }

  /** Stops timers (the service is closing). */
  close (): void {
    this.registration.close()
    if (this.#beatTimer !== undefined) clearTimeout(this.#beatTimer)
  }

  async holdings (): Promise<Holding[]> {
    const out: Holding[] = []
    let cursor: string | undefined
    do {
      const page = await this.#o.store.objects.list({ orgId: this.#o.node.orgId, limit: 1000, cursor })
      for (const o of page.items) {
        const state = o.meta.deleted === true ? undefined : STATE_OF[o.status]
        if (state === undefined) continue
        const ids = { objectType: o.key.objectType, objectId: o.key.objectId, instanceId: o.meta.instanceID }
        // A version a plugin refused stays refused in the CSS's eyes after a reconnect.
        const refused = this.#o.plugins.refusal(ids.objectType, ids.objectId, ids.instanceId)
        const hash = await this.#heldHash(o)
        const h = hash === undefined ? ids : { ...ids, hash }
        out.push(refused === undefined ? { ...h, state } : { ...h, state: 'error', message: refused })
      }
      cursor = page.next
    } while (cursor !== undefined)
    return out
  }

  /** The hash of the bytes this edge really holds (small objects; large ones are not re-read). */
  async #heldHash (o: { dataRef?: string, meta: { objectSize?: number } }): Promise<string | undefined> {
    if (o.dataRef === undefined || (o.meta.objectSize ?? 0) > HASH_HELD_UP_TO) return undefined
    const data = await readBlob(this.#o.store.blobs, o.dataRef).catch(() => undefined)
    return data === undefined ? undefined : createHash('sha256').update(data).digest('hex')
  }

  /** One message from the CSS: decoded, then handed to the handler of its kind. */
  async onMessage (_topic: string, payload: Buffer): Promise<void> {
    let msg: DownMessage
    try {
      msg = decodeDown(payload)
    } catch (err) {
      this.dropped++
      this.#log.warn('Dropped a malformed CSS message', { err, bytes: payload.length })
      return
    }
    const handler = EDGE_HANDLERS[msg.kind] as (c: EdgeContext, m: DownMessage, l: Logger) => Promise<void>
    await handler(this.#ctx, msg, this.#log)
  }

  /** Edge to cloud: offers an object created on this edge to the CSS (small data inline). */
  async offer (obj: StoredObject): Promise<void> {
    const m = obj.meta
    let data: string | undefined
    if (obj.dataRef !== undefined && m.objectSize > 0 && m.objectSize <= this.#o.maxInline) {
      const bytes = await readBlob(this.#o.store.blobs, obj.dataRef)
      if (bytes === undefined) {
        throw new StorageError(`Data of ${m.objectType}/${m.objectID} is missing locally`)
      }
      data = bytes.toString('base64')
    }
    const record = { ...obj.key, ...CLOUD, instanceId: m.instanceID, status: 'delivering' as const }
    await this.#o.store.deliveries.upsertMany([{ ...record, detail: 'offered' }])
    const chunkSize = this.#o.chunkSize
    this.up.sendSoon(
      data === undefined
        ? { v: 1, kind: 'offer', meta: m, chunkSize }
        : { v: 1, kind: 'offer', meta: m, data, chunkSize }
    )
  }

  /** Edge to cloud: an app deleted this edge's object; the CSS removes its copy and confirms. */
  withdraw (tombstone: StoredObject): void {
    const ids = { objectType: tombstone.key.objectType, objectId: tombstone.key.objectId }
    this.up.sendSoon({ v: 1, kind: 'withdraw', ...ids, instanceId: tombstone.meta.instanceID })
  }

  /**
   * After every (re)connect: offers again each edge object the CSS has not confirmed, and withdraws
   * again each one an app deleted that the CSS has not confirmed removing.
   */
  async reoffer (): Promise<void> {
    const { store, node } = this.#o
    let cursor: string | undefined
    do {
      const page = await store.objects.list({
        orgId: node.orgId, statuses: ['ready', 'objdeleted'], limit: 500, cursor
      })
      for (const o of page.items) {
        if (o.meta.originType !== node.destinationType || o.meta.originID !== node.destinationId) continue
        if (o.meta.deleted === true) {
          this.withdraw(o)
          continue
        }
        const d = await store.deliveries.get(o.key, { orgId: node.orgId, ...CLOUD })
        const confirmed =
          d !== undefined &&
          d.instanceId === o.meta.instanceID &&
          (d.status === 'delivered' || d.status === 'consumed')
        if (!confirmed) await this.offer(o)
      }
      cursor = page.next
    } while (cursor !== undefined)
  }
}
