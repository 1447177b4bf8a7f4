/**
 * The receiving side of chunked transfers (an edge pulling from the CSS, or the CSS pulling an
 * edge's object). The receiver pulls an instance's data in chunks (a window of
 * requests in flight), writes each at its offset in a part file, and checkpoints the contiguous
 * prefix it holds durably (data fsynced first, then a small JSON record). A restart, a broker
 * restart or a lost connection resumes from the checkpoint, not from zero. A chunk whose sha256
 * does not match is asked for again; the whole data is hashed before it is accepted.
 */
import { createHash } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from '../common/log.js'
import type { ObjectMetadata } from '../common/model.js'
import type { ChunkMessage, FetchMessage, ProgressMessage } from '../common/protocol/messages.js'
import { StorageError } from '../common/errors.js'

export interface TransferOptions {
  dir: string
  window: number
  timeoutMs: number
  /** At most this many transfers run at once on one edge. */
  maxConcurrent: number
  /** Sends a fetch or progress message to the sender of `meta`'s data. Must not block. */
  send: (msg: FetchMessage | ProgressMessage, meta: ObjectMetadata) => void
  /**
   * Called with the verified part file and its sha256; it must take the data (adopt or copy the
   * file) before resolving. The file is removed afterwards if still there.
   */
  complete: (meta: ObjectMetadata, file: string, sha256: string) => Promise<void>
  /** The data failed its whole-object hash check too often, or the transfer cannot go on. */
  failed: (meta: ObjectMetadata, message: string) => void
  log: Logger
}

interface Checkpoint {
  meta: ObjectMetadata
  chunkSize: number
  done: number
  hashFailures: number
}

export interface TransferStats {
  /** Chunk bytes received over the wire since start (repeats included). */
  bytesReceived: number
  corruptChunks: number
  resumedBytes: number
  completed: number
  /** Progress reports sent to the sender (at the first chunk of a transfer, then every 500 ms). */
  progressSent: number
}

const CHECKPOINT_EVERY_MS = 500
const MAX_HASH_FAILURES = 3

function slug (orgId: string, objectType: string, objectId: string): string {
  return `${encodeURIComponent(orgId)}~${encodeURIComponent(objectType)}~${encodeURIComponent(objectId)}`
}
const metaSlug = (m: ObjectMetadata): string => slug(m.destinationOrgID, m.objectType, m.objectID)

/** Out-of-order chunks kept in memory for the running hash (see Transfer.unhashed). */
const UNHASHED_KEPT = 16

class Transfer {
  readonly chunks: number
  readonly received = new Set<number>()
  readonly requested = new Map<number, number>() // chunk index -> time asked
  next: number
  done: number
  /** Running sha256 over chunks [0, hashed): the whole data is hashed as it arrives, not re-read. */
  hash = createHash('sha256')
  hashed = 0
  /**
   * Chunks written but not hashed yet (they arrived ahead of a missing one), kept to hash without
   * reading them back from disk; at most UNHASHED_KEPT (the receiver's window is far smaller).
   */
  readonly unhashed = new Map<number, Buffer>()
  pausedUntil = 0
  /** Multiplier of the re-request timeout; doubles on timeouts, back to 1 when chunks arrive. */
  backoff = 1
  lastCheckpoint = Date.now()
  /** Whether this transfer reported progress yet (its first chunk is reported at once). */
  reported = false
  checkpointing = false
  finishing = false
  cancelled = false

  readonly cp: Checkpoint
  readonly fd: FileHandle
  readonly base: string

  constructor (cp: Checkpoint, fd: FileHandle, base: string) {
    this.cp = cp
    this.fd = fd
    this.base = base
    this.chunks = Math.ceil(cp.meta.objectSize / cp.chunkSize)
    this.done = cp.done
    this.next = cp.done
  }

  get meta (): ObjectMetadata {
    return this.cp.meta
  }

  get ids (): { objectType: string; objectId: string; instanceId: number } {
    return {
      objectType: this.meta.objectType,
      objectId: this.meta.objectID,
      instanceId: this.meta.instanceID
    }
  }
}

export class TransferManager {
  readonly stats: TransferStats = { bytesReceived: 0, corruptChunks: 0, resumedBytes: 0, completed: 0, progressSent: 0 }
  readonly #opts: TransferOptions
  readonly #active = new Map<string, Transfer>()

  /** Transfers in progress. */
  get active (): number {
    return this.#active.size
  }

  readonly #queue = new Map<string, { meta: ObjectMetadata; chunkSize: number }>()
  readonly #timer: NodeJS.Timeout

  constructor (opts: TransferOptions) {
    this.#opts = opts
    this.#timer = setInterval(
      () => {
        this.#tick()
      },
      Math.min(1000, opts.timeoutMs)
    )
    this.#timer.unref()
  }

  /** Starts (or resumes, or re-kicks) the transfer of an instance. Idempotent. */
  async start (meta: ObjectMetadata, chunkSize: number): Promise<void> {
    const s = metaSlug(meta)
    const cur = this.#active.get(s)
    if (cur !== undefined) {
      if (cur.meta.instanceID === meta.instanceID) {
        this.#rerequest(cur)
        return
      } // e.g. after a reconnect
      if (cur.meta.instanceID > meta.instanceID) return
      await this.cancel(meta.destinationOrgID, meta.objectType, meta.objectID)
    }
    if (this.#active.size >= this.#opts.maxConcurrent) {
      this.#queue.set(s, { meta, chunkSize })
      return
    }
    this.#queue.delete(s)
    await mkdir(this.#opts.dir, { recursive: true })
    const base = path.join(this.#opts.dir, `${s}~${meta.instanceID}`)
    await this.#removeOthers(s, base)
    let cp: Checkpoint = { meta, chunkSize, done: 0, hashFailures: 0 }
    try {
      const saved = JSON.parse(await readFile(`${base}.json`, 'utf8')) as Checkpoint
      if (saved.chunkSize === chunkSize && saved.meta.dataHash === meta.dataHash) cp = { ...saved, meta }
    } catch {
      /* no checkpoint: start at zero */
    }
    const fd = await open(`${base}.part`, 'a+').then(async (h) => {
      await h.close()
      return await open(`${base}.part`, 'r+')
    })
    const t = new Transfer(cp, fd, base)
    if (cp.done > 0) {
      this.stats.resumedBytes += Math.min(cp.done * chunkSize, meta.objectSize)
      this.#opts.log.info('Resuming a transfer', {
        objectId: meta.objectID,
        instanceId: meta.instanceID,
        fromByte: Math.min(cp.done * chunkSize, meta.objectSize)
      })
    }
    this.#active.set(s, t)
    if (t.done >= t.chunks) {
      await this.#finish(s, t)
      return
    }
    this.#fill(t)
  }

  /** A delete or a newer instance: drop the transfer and its files. */
  async cancel (orgId: string, objectType: string, objectId: string): Promise<void> {
    const s = slug(orgId, objectType, objectId)
    this.#queue.delete(s)
    const t = this.#active.get(s)
    if (t === undefined) return
    t.cancelled = true
    this.#active.delete(s)
    await t.fd.close().catch(() => {})
    await this.#removeFiles(t.base)
    this.#startQueued()
  }

  /** The transfer `m` names in `orgId`, if its data comes from `from` (when given). */
  #find (
    orgId: string,
    m: { objectType: string; objectId: string; instanceId: number },
    from?: { originType?: string; originID?: string }
  ): Transfer | undefined {
    const t = this.#active.get(slug(orgId, m.objectType, m.objectId))
    if (t === undefined || t.meta.instanceID !== m.instanceId) return undefined
    // Only the node the data comes from may answer for it (the CSS pulling an edge's object).
    if (from !== undefined && (t.meta.originType !== from.originType || t.meta.originID !== from.originID)) {
      return undefined
    }
    return t
  }

  onBusy (
    orgId: string,
    m: { objectType: string; objectId: string; instanceId: number; retryAfterMs: number },
    from?: { originType?: string; originID?: string }
  ): void {
    const t = this.#find(orgId, m, from)
    if (t === undefined) return
    t.pausedUntil = Date.now() + m.retryAfterMs
    // Everything asked for was refused: ask again from the first chunk not yet held.
    t.requested.clear()
    t.next = t.done
  }

  async onGone (
    orgId: string,
    m: { objectType: string; objectId: string; instanceId: number },
    from?: { originType?: string; originID?: string }
  ): Promise<void> {
    if (this.#find(orgId, m, from) !== undefined) await this.cancel(orgId, m.objectType, m.objectId)
  }

  async onChunk (
    orgId: string,
    c: ChunkMessage,
    from?: { originType?: string; originID?: string }
  ): Promise<void> {
    const s = slug(orgId, c.objectType, c.objectId)
    const t = this.#find(orgId, c, from)
    // Chunks of a transfer we dropped, or repeats, are simply ignored.
    if (t === undefined || c.offset % t.cp.chunkSize !== 0) return
    const idx = c.offset / t.cp.chunkSize
    if (idx < t.done || t.received.has(idx) || idx >= t.chunks) return
    this.stats.bytesReceived += c.data.length
    const expected = Math.min(t.cp.chunkSize, t.meta.objectSize - c.offset)
    if (c.data.length !== expected || createHash('sha256').update(c.data).digest('hex') !== c.sha256) {
      this.stats.corruptChunks++
      this.#opts.log.warn('A chunk arrived damaged; asking for it again', {
        objectId: t.meta.objectID,
        offset: c.offset
      })
      this.#request(t, idx)
      return
    }
    await t.fd.write(c.data, 0, c.data.length, c.offset)
    if (t.cancelled) return
    t.requested.delete(idx)
    t.received.add(idx)
    t.backoff = 1
    while (t.received.has(t.done)) {
      t.received.delete(t.done)
      t.done++
    }
    if (idx === t.hashed) {
      t.hash.update(c.data)
      t.hashed++
    } else if (t.unhashed.size < UNHASHED_KEPT) {
      t.unhashed.set(idx, c.data) // ahead of a missing chunk: hashed from memory when it arrives
    }
    await this.#advanceHash(t)
    if (t.done >= t.chunks) {
      await this.#finish(s, t)
      return
    }
    this.#fill(t)
    // The first chunk is reported at once: a transfer that ends within 500 ms is still seen going.
    // (Not `done === 1`: chunks complete concurrently, and the handler of the first may already
    // see two done, so a short transfer under load reported nothing.)
    if (!t.reported || Date.now() - t.lastCheckpoint >= CHECKPOINT_EVERY_MS) await this.#checkpoint(t)
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    for (const t of this.#active.values()) {
      await this.#checkpoint(t).catch(() => {})
      t.cancelled = true
      await t.fd.close().catch(() => {})
    }
    this.#active.clear()
  }

  /** Hashes chunks that are on disk but not yet hashed (they arrived out of order, or before a restart). */
  async #advanceHash (t: Transfer): Promise<void> {
    while (t.hashed < t.done && !t.cancelled) {
      const held = t.unhashed.get(t.hashed)
      if (held !== undefined) {
        t.unhashed.delete(t.hashed)
        t.hash.update(held)
        t.hashed++
        continue
      }
      const offset = t.hashed * t.cp.chunkSize
      const len = Math.min(t.cp.chunkSize, t.meta.objectSize - offset)
      const buf = Buffer.allocUnsafe(len)
      const { bytesRead } = await t.fd.read(buf, 0, len, offset)
      if (bytesRead !== len) throw new StorageError(`Part file is short at byte ${offset}`)
      t.hash.update(buf)
      t.hashed++
    }
  }

  #request (t: Transfer, idx: number): void {
    t.requested.set(idx, Date.now())
    const offset = idx * t.cp.chunkSize
    this.#opts.send(
      { v: 1, kind: 'fetch', ...t.ids, offset, length: Math.min(t.cp.chunkSize, t.meta.objectSize - offset) },
      t.meta
    )
  }

  /** Keeps `window` chunks asked for ahead of what has arrived. */
  #fill (t: Transfer): void {
    if (Date.now() < t.pausedUntil) return
    while (t.requested.size < this.#opts.window && t.next < t.chunks) {
      if (!t.received.has(t.next) && !t.requested.has(t.next)) this.#request(t, t.next)
      t.next++
    }
  }

  #rerequest (t: Transfer): void {
    t.requested.clear()
    t.pausedUntil = 0
    t.next = t.done
    this.#fill(t)
  }

  #tick (): void {
    const now = Date.now()
    for (const t of this.#active.values()) {
      if (t.finishing) continue
      if (t.requested.size === 0) {
        this.#fill(t)
        continue
      }
      // Each timeout doubles the wait (up to 8x): a slow sender is not buried under repeats.
      const wait = this.#opts.timeoutMs * t.backoff
      let timedOut = false
      for (const [idx, at] of t.requested) {
        if (now - at > wait) {
          this.#request(t, idx)
          timedOut = true
        }
      }
      if (timedOut) t.backoff = Math.min(t.backoff * 2, 8)
    }
  }

  async #checkpoint (t: Transfer): Promise<void> {
    if (t.checkpointing || t.cancelled) return
    t.checkpointing = true
    try {
      const done = t.done
      await t.fd.datasync() // the data first: a checkpoint never claims bytes that are not on disk
      await writeJsonAtomic(`${t.base}.json`, { ...t.cp, done })
      t.lastCheckpoint = Date.now()
      t.reported = true
      this.stats.progressSent++
      this.#opts.send(
        { v: 1, kind: 'progress', ...t.ids, bytes: Math.min(done * t.cp.chunkSize, t.meta.objectSize) },
        t.meta
      )
    } finally {
      t.checkpointing = false
    }
  }

  async #finish (s: string, t: Transfer): Promise<void> {
    if (t.finishing) return
    t.finishing = true
    await t.fd.truncate(t.meta.objectSize)
    await t.fd.datasync()
    await this.#advanceHash(t)
    const digest = t.hash.digest('hex')
    const ok = t.meta.dataHash === undefined || digest === t.meta.dataHash
    await t.fd.close()
    this.#active.delete(s)
    if (!ok) {
      const failures = t.cp.hashFailures + 1
      await this.#removeFiles(t.base)
      if (failures >= MAX_HASH_FAILURES) {
        this.#opts.failed(t.meta, `rejected: data hash mismatch after ${failures} full transfers`)
      } else {
        this.#opts.log.warn('Data hash mismatch after a transfer; fetching again', {
          objectId: t.meta.objectID,
          failures
        })
        this.#opts.send(
          { v: 1, kind: 'progress', ...t.ids, bytes: 0, detail: 'hash mismatch, fetching again' },
          t.meta
        )
        await mkdir(this.#opts.dir, { recursive: true })
        await writeJsonAtomic(`${t.base}.json`, { ...t.cp, done: 0, hashFailures: failures })
        await this.start(t.meta, t.cp.chunkSize)
      }
      this.#startQueued()
      return
    }
    try {
      await this.#opts.complete(t.meta, `${t.base}.part`, digest)
      this.stats.completed++
    } finally {
      await this.#removeFiles(t.base)
      this.#startQueued()
    }
  }

  #startQueued (): void {
    for (const [s, q] of this.#queue) {
      if (this.#active.size >= this.#opts.maxConcurrent) return
      this.#queue.delete(s)
      this.start(q.meta, q.chunkSize).catch((err: unknown) => {
        this.#opts.log.error('Cannot start a queued transfer', { err })
      })
    }
  }

  async #removeFiles (base: string): Promise<void> {
    await rm(`${base}.part`, { force: true })
    await rm(`${base}.json`, { force: true })
  }

  /** Part files of other instances of the same object are stale. */
  async #removeOthers (s: string, keep: string): Promise<void> {
    for (const f of await readdir(this.#opts.dir)) {
      const full = path.join(this.#opts.dir, f)
      if (f.startsWith(`${s}~`) && !full.startsWith(`${keep}.`)) await rm(full, { force: true })
    }
  }
}

async function writeJsonAtomic (file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp`
  const h = await open(tmp, 'w')
  try {
    await h.writeFile(JSON.stringify(value))
    await h.sync()
  } finally {
    await h.close()
  }
  await rename(tmp, file)
}
