/**
 * Serves chunked transfers: each `fetch` from an edge is answered with one chunk read by byte range
 * from storage. Concurrent transfers are capped so a large object sent to many nodes keeps the
 * CSS's memory flat: at most `maxConcurrent` transfers × the edges' windows × the chunk size are
 * in flight; other edges are told `busy` and ask again later.
 */
import { createHash } from 'node:crypto'
import type { Logger } from '../common/log.js'
import type { DestinationKey, ObjectKey } from '../common/model.js'
import { encode, encodeChunk, type UpMessage } from '../common/protocol/messages.js'
import { downTopic } from '../common/protocol/topics.js'
import type { Store } from '../storage/index.js'
import type { CloudTransport } from '../transport/index.js'

export interface TransferOptions {
  maxConcurrent: number
  /** A transfer with no fetch for this long no longer holds a slot (the edge went away). */
  idleMs: number
}

type Fetch = Extract<UpMessage, { kind: 'fetch' }>

export class ChunkServer {
  /** Bytes served since start, for health and benchmarks. */
  bytesServed = 0
  readonly #active = new Map<string, number>() // node + instance -> last fetch time
  readonly #store: Store
  readonly #transport: CloudTransport
  readonly #opts: TransferOptions
  readonly #log: Logger

  constructor (store: Store, transport: CloudTransport, opts: TransferOptions, log: Logger) {
    this.#store = store
    this.#transport = transport
    this.#opts = opts
    this.#log = log
  }

  get active (): number { return this.#active.size }

  #slot (node: DestinationKey, m: { objectType: string, objectId: string }): string {
    return `${node.destinationType}/${node.destinationId}|${m.objectType}/${m.objectId}`
  }

  /** The transfer ended (received, error or deleted): free its slot at once. */
  finished (node: DestinationKey, m: { objectType: string, objectId: string }): void {
    this.#active.delete(this.#slot(node, m))
  }

  #admit (slot: string): boolean {
    const now = Date.now()
    if (this.#active.has(slot) || this.#active.size < this.#opts.maxConcurrent) {
      this.#active.set(slot, now)
      return true
    }
    for (const [s, at] of this.#active) if (now - at > this.#opts.idleMs) this.#active.delete(s)
    if (this.#active.size >= this.#opts.maxConcurrent) return false
    this.#active.set(slot, now)
    return true
  }

  async onFetch (node: DestinationKey, msg: Fetch): Promise<void> {
    const key: ObjectKey = { orgId: node.orgId, objectType: msg.objectType, objectId: msg.objectId }
    const ids = { objectType: msg.objectType, objectId: msg.objectId, instanceId: msg.instanceId }
    const topic = downTopic(node)
    const obj = await this.#store.objects.get(key)
    if (obj === undefined || obj.meta.instanceID !== msg.instanceId || obj.meta.deleted === true || obj.dataRef === undefined) {
      this.finished(node, msg)
      await this.#transport.publish(topic, encode({ v: 1, kind: 'gone', ...ids }))
      return
    }
    if (!this.#admit(this.#slot(node, msg))) {
      // Jitter spreads the retries of many waiting edges.
      await this.#transport.publish(topic, encode({ v: 1, kind: 'busy', ...ids, retryAfterMs: 500 + Math.floor(Math.random() * 1500) }))
      return
    }
    const size = obj.meta.objectSize
    if (msg.offset >= size) {
      this.#log.warn('Fetch beyond the end of the data', { objectId: msg.objectId, offset: msg.offset, size })
      return
    }
    const end = Math.min(msg.offset + msg.length, size) - 1
    const stream = await this.#store.blobs.read(obj.dataRef, { start: msg.offset, end })
    if (stream === undefined) {
      await this.#transport.publish(topic, encode({ v: 1, kind: 'gone', ...ids }))
      return
    }
    const parts: Buffer[] = []
    for await (const c of stream) parts.push(Buffer.from(c as Uint8Array))
    const data = Buffer.concat(parts)
    this.bytesServed += data.length
    // QoS 0: a broker never queues chunks for an edge that went away (memory stays flat); the
    // edge asks again for whatever did not arrive.
    await this.#transport.publish(topic, encodeChunk({ v: 1, kind: 'chunk', ...ids, offset: msg.offset, sha256: createHash('sha256').update(data).digest('hex'), data }), 0)
  }
}
