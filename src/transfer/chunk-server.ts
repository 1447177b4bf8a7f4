/**
 * Serves chunked transfers, in either direction (CSS to edge, edge to CSS): each `fetch` is
 * answered with one chunk read by byte range from storage. Concurrent transfers are capped so a
 * large object sent to many nodes keeps memory flat: at most `maxConcurrent` transfers × the
 * receivers' windows × the chunk size are in flight; other receivers are told `busy` and ask again.
 */
import type { Logger } from '../common/log.js'
import type { ObjectKey } from '../common/model.js'
import { allocChunkFrame, encode, type FetchMessage } from '../common/protocol/messages.js'
import type { Store } from '../storage/index.js'
import { StorageError } from '../common/errors.js'

export interface ChunkServerOptions {
  maxConcurrent: number
  /** A transfer with no fetch for this long no longer holds a slot (the receiver went away). */
  idleMs: number
  /** Sends a reply to whoever asked (`peer`), QoS 0 for chunks. */
  reply: (peer: string, payload: Buffer, qos: 0 | 1) => Promise<void>
}

/** Chunk hashes kept (about 150 bytes each): 4,096 cover 1 GiB in 256 KiB chunks. */
const HASHES_KEPT = 4096

export class ChunkServer {
  /** Bytes served since start, for health and benchmarks. */
  bytesServed = 0
  /**
   * sha256 of chunks already served, by blob, offset and length: when ten edges fetch the same
   * object each chunk is hashed once, not ten times (blobs never change under a ref).
   */
  readonly #hashes = new Map<string, string>()
  readonly #active = new Map<string, number>() // peer + object -> last fetch time
  /** Fetches being served: a receiver that timed out asks again, and a slow store must not serve both. */
  readonly #inflight = new Set<string>()
  readonly #store: Store
  readonly #opts: ChunkServerOptions
  readonly #log: Logger

  constructor (store: Store, opts: ChunkServerOptions, log: Logger) {
    this.#store = store
    this.#opts = opts
    this.#log = log
  }

  get active (): number {
    return this.#active.size
  }

  #slot (peer: string, m: { objectType: string; objectId: string }): string {
    return `${peer}|${m.objectType}/${m.objectId}`
  }

  /** The transfer ended (received, error or deleted): free its slot at once. */
  finished (peer: string, m: { objectType: string; objectId: string }): void {
    this.#active.delete(this.#slot(peer, m))
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

  /** `orgId`: the org of the asking peer; an instance of another org can never be named. */
  async onFetch (peer: string, orgId: string, msg: FetchMessage): Promise<void> {
    const id = `${peer}|${msg.objectType}/${msg.objectId}#${msg.instanceId}@${msg.offset}`
    if (this.#inflight.has(id)) return
    this.#inflight.add(id)
    try {
      await this.#serve(peer, orgId, msg)
    } finally {
      this.#inflight.delete(id)
    }
  }

  /** Reads a chunk straight into `into` (one read where the store can), else from a range stream. */
  async #read (ref: string, offset: number, into: Buffer): Promise<number | undefined> {
    const blobs = this.#store.blobs
    if (blobs.readInto !== undefined) return await blobs.readInto(ref, offset, into)
    const stream = await blobs.read(ref, { start: offset, end: offset + into.length - 1 })
    if (stream === undefined) return undefined
    let pos = 0
    for await (const c of stream) {
      const b = c as Uint8Array
      if (pos + b.length > into.length) {
        throw new StorageError('Storage returned more bytes than the range asked for')
      }
      into.set(b, pos)
      pos += b.length
    }
    return pos
  }

  async #serve (peer: string, orgId: string, msg: FetchMessage): Promise<void> {
    const key: ObjectKey = { orgId, objectType: msg.objectType, objectId: msg.objectId }
    const ids = { objectType: msg.objectType, objectId: msg.objectId, instanceId: msg.instanceId }
    const obj = await this.#store.objects.get(key)
    if (
      obj === undefined ||
      obj.meta.instanceID !== msg.instanceId ||
      obj.meta.deleted === true ||
      obj.dataRef === undefined
    ) {
      this.finished(peer, msg)
      await this.#opts.reply(peer, encode({ v: 1, kind: 'gone', ...ids }), 1)
      return
    }
    if (!this.#admit(this.#slot(peer, msg))) {
      // Jitter spreads the retries of many waiting receivers.
      await this.#opts.reply(
        peer,
        encode({ v: 1, kind: 'busy', ...ids, retryAfterMs: 500 + Math.floor(Math.random() * 1500) }),
        1
      )
      return
    }
    const size = obj.meta.objectSize
    if (msg.offset >= size) {
      this.#log.warn('Fetch beyond the end of the data', { objectId: msg.objectId, offset: msg.offset, size })
      return
    }
    const end = Math.min(msg.offset + msg.length, size) - 1
    const frame = allocChunkFrame(ids, msg.offset, end - msg.offset + 1)
    const pos = await this.#read(obj.dataRef, msg.offset, frame.data)
    if (pos === undefined) {
      await this.#opts.reply(peer, encode({ v: 1, kind: 'gone', ...ids }), 1)
      return
    }
    if (pos !== frame.data.length) {
      throw new StorageError(`Storage returned ${pos} of ${frame.data.length} bytes`)
    }
    const hashKey = `${obj.dataRef}@${msg.offset}+${pos}`
    const known = this.#hashes.get(hashKey)
    if (known === undefined) {
      frame.seal()
      if (this.#hashes.size >= HASHES_KEPT) this.#hashes.delete(this.#hashes.keys().next().value ?? '')
      this.#hashes.set(hashKey, frame.sha256())
    } else {
      frame.seal(known)
    }
    this.bytesServed += pos
    // QoS 0: a broker never queues chunks for a receiver that went away (memory stays flat); the
    // receiver asks again for whatever did not arrive.
    await this.#opts.reply(peer, frame.frame, 0)
  }
}
