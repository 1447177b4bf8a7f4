/** Object data in a chunk collection: written in fixed-size chunks, read back by byte range. */
import { Readable } from 'node:stream'
import { Binary, type Collection, type Db } from 'mongodb'
import { isSyncError, StorageError } from '../../common/errors.js'
import { checkRange, HashingCounter, newBlobRef } from '../common.js'
import type { BlobInfo, BlobStore, ByteRange } from '../types.js'

export const BLOB_CHUNK_SIZE = 255 * 1024
const INSERT_BATCH = 4
/** Chunk lookups in flight while reading (about 1 MiB). */
const READ_AHEAD = 4

interface BlobDoc {
  _id: string
  size: number
  sha256: string
  chunkSize: number
  created: Date
}
interface ChunkDoc {
  _id: string
  ref: string
  n: number
  data: Binary
}

export class MongoBlobStore implements BlobStore {
  readonly #blobs: Collection<BlobDoc>
  readonly #chunks: Collection<ChunkDoc>
  constructor (db: Db) {
    this.#blobs = db.collection<BlobDoc>('blobs')
    this.#chunks = db.collection<ChunkDoc>('blobChunks')
  }

  async init (): Promise<void> {
    await this.#chunks.createIndex({ ref: 1, n: 1 }, { unique: true })
  }

  async write (
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { maxSize?: number } = {}
  ): Promise<BlobInfo> {
    const ref = newBlobRef()
    const counter = new HashingCounter(opts.maxSize)
    let pending: Buffer[] = []
    let pendingLen = 0
    let n = 0
    let batch: ChunkDoc[] = []
    let sha256 = ''
    const flushBatch = async (): Promise<void> => {
      if (batch.length === 0) return
      const docs = batch
      batch = []
      await this.#chunks.insertMany(docs, { ordered: true })
    }
    const cut = async (): Promise<void> => {
      const all = Buffer.concat(pending, pendingLen)
      let off = 0
      while (all.length - off >= BLOB_CHUNK_SIZE) {
        batch.push({ _id: `${ref}:${n}`, ref, n, data: new Binary(all.subarray(off, off + BLOB_CHUNK_SIZE)) })
        n++
        off += BLOB_CHUNK_SIZE
        if (batch.length >= INSERT_BATCH) await flushBatch()
      }
      pending = off < all.length ? [all.subarray(off)] : []
      pendingLen = all.length - off
    }
    try {
      for await (const chunk of source) {
        counter.add(chunk)
        pending.push(Buffer.from(chunk))
        pendingLen += chunk.byteLength
        if (pendingLen >= BLOB_CHUNK_SIZE) await cut()
      }
      if (pendingLen > 0) {
        batch.push({ _id: `${ref}:${n}`, ref, n, data: new Binary(Buffer.concat(pending, pendingLen)) })
        n++
      }
      await flushBatch()
      sha256 = counter.digest()
      // The blob document is written last: a blob without one was never completed.
      await this.#blobs.insertOne({
        _id: ref,
        size: counter.size,
        sha256,
        chunkSize: BLOB_CHUNK_SIZE,
        created: new Date()
      })
    } catch (err) {
      await this.#chunks.deleteMany({ ref }).catch(() => {})
      if (isSyncError(err)) throw err
      throw new StorageError('Cannot write object data', { cause: err })
    }
    return { ref, size: counter.size, sha256 }
  }

  async read (ref: string, range?: ByteRange): Promise<Readable | undefined> {
    const blob = await this.#blobs.findOne({ _id: ref })
    if (blob === null) return undefined
    if (blob.size === 0 && range === undefined) return Readable.from([])
    const { start, end } = checkRange(range, blob.size)
    const cs = blob.chunkSize
    const first = Math.floor(start / cs)
    const last = Math.floor(end / cs)
    const chunks = this.#chunks
    // Each chunk is fetched by its exact _id: the one lookup every MongoDB-wire server serves from
    // its primary index (FerretDB on SQLite scans the collection for range and $in filters). A few
    // lookups run ahead so the stream is not one round trip per chunk; memory stays a few chunks.
    return Readable.from(
      (async function * () {
        // Settled results, never rejected promises: a read-ahead failing while an earlier chunk is
        // awaited must not become an unhandled rejection.
        const fetch = async (n: number): Promise<ChunkDoc | Error | null> =>
          await chunks
            .findOne({ _id: `${ref}:${n}` })
            .catch((err: unknown) => new StorageError(`Cannot read chunk ${n} of ${ref}`, { cause: err }))
        const ahead: Array<Promise<ChunkDoc | Error | null>> = []
        for (let n = first; n <= Math.min(first + READ_AHEAD - 1, last); n++) ahead.push(fetch(n))
        for (let n = first; n <= last; n++) {
          const doc = await ahead.shift()
          if (doc instanceof Error) throw doc
          if (n + READ_AHEAD <= last) ahead.push(fetch(n + READ_AHEAD))
          if (doc?.n !== n) throw new StorageError(`Blob ${ref} is missing chunk ${n}`)
          const buf = Buffer.from(doc.data.buffer)
          const base = n * cs
          const s = Math.max(start - base, 0)
          const e = Math.min(end + 1 - base, buf.length)
          if (s < e) yield buf.subarray(s, e)
        }
      })()
    )
  }

  async size (ref: string): Promise<number | undefined> {
    const blob = await this.#blobs.findOne({ _id: ref }, { projection: { size: 1 } })
    return blob?.size
  }

  async remove (ref: string): Promise<void> {
    await this.#blobs.deleteOne({ _id: ref })
    await this.#chunks.deleteMany({ ref })
  }
}
