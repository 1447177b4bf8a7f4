/**
 * Object data as plain files: streamed to a temp file, fsynced, then renamed into place. Data of
 * up to SMALL_BLOB_BYTES (most configurations) goes to a journal instead (`small-blobs.*`, see
 * journaled-table.ts): concurrent small writes share one append and fdatasync, where files cost
 * each an fsync, a rename and a directory fsync (#22: durable puts/s).
 */
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { Readable } from 'node:stream'
import { isSyncError, StorageError } from '../../common/errors.js'
import { checkRange, HashingCounter, newBlobRef } from '../common.js'
import type { BlobInfo, BlobStore, ByteRange } from '../types.js'
import { DirSync, removeIfExists } from './durable-json-file.js'
import { JournaledTable } from './journaled-table.js'

export const SMALL_BLOB_BYTES = 4096

const REF_RE = /^[0-9a-f-]{36}$/

/** Writes every byte of `chunk`, or throws (a short write is retried for the rest). */
async function writeAll (fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let done = 0
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done)
    if (bytesWritten <= 0) throw new StorageError('The disk accepted no more bytes')
    done += bytesWritten
  }
}

/** How long an open handle for chunk reads stays open unused. */
const HANDLE_IDLE_MS = 10_000
const MAX_HANDLES = 64

export class FileBlobStore implements BlobStore {
  /** Open handles of blobs being served in chunks: no open, stat and close per chunk. */
  readonly #handles = new Map<string, { fh: Promise<FileHandle>; used: number }>()
  #sweeper: NodeJS.Timeout | undefined
  readonly #dir: string
  readonly #tmp: string
  readonly #dirSync: DirSync
  readonly #small: JournaledTable<{ b64: string }>
  constructor (dir: string) {
    this.#dir = dir
    this.#tmp = path.join(dir, '.tmp')
    this.#dirSync = new DirSync(dir)
    this.#small = new JournaledTable(path.join(dir, 'small-blobs.json'))
  }

  async init (): Promise<void> {
    await mkdir(this.#tmp, { recursive: true })
    await this.#small.open()
  }

  async close (): Promise<void> {
    await this.#closeHandles(() => true)
    await this.#small.close()
  }

  async #closeHandles (which: (ref: string, used: number) => boolean): Promise<void> {
    const closing: Array<Promise<void>> = []
    for (const [ref, h] of this.#handles) {
      if (!which(ref, h.used)) continue
      this.#handles.delete(ref)
      closing.push(h.fh.then(async (fh) => { await fh.close() }, () => {}))
    }
    await Promise.all(closing)
    if (this.#handles.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper)
      this.#sweeper = undefined
    }
  }

  async readInto (ref: string, offset: number, target: Buffer): Promise<number | undefined> {
    const small = this.#smallBytes(ref)
    if (small !== undefined) return small.copy(target, 0, Math.min(offset, small.length))
    let h = this.#handles.get(ref)
    if (h === undefined) {
      if (this.#handles.size >= MAX_HANDLES) {
        const oldest = [...this.#handles].sort((a, b) => a[1].used - b[1].used)[0]?.[0]
        await this.#closeHandles((r) => r === oldest)
      }
      h = { fh: open(this.#path(ref), 'r'), used: Date.now() }
      h.fh.catch(() => {}) // awaited below; a missing file is answered there
      this.#handles.set(ref, h)
      this.#sweeper ??= setInterval(() => {
        void this.#closeHandles((_r, used) => Date.now() - used > HANDLE_IDLE_MS)
      }, HANDLE_IDLE_MS).unref()
    }
    h.used = Date.now()
    let fh: FileHandle
    try {
      fh = await h.fh
    } catch (err) {
      this.#handles.delete(ref)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new StorageError('Cannot open object data', { cause: err })
    }
    let done = 0
    try {
      while (done < target.length) {
        const { bytesRead } = await fh.read(target, done, target.length - done, offset + done)
        if (bytesRead === 0) break
        done += bytesRead
      }
    } catch (err) {
      // Closed under us (the blob removed meanwhile), or the disk failed: the receiver asks again.
      throw new StorageError('Cannot read object data', { cause: err })
    }
    return done
  }

  #smallBytes (ref: string): Buffer | undefined {
    // Own keys only: a forged ref such as `constructor` is not a small blob (and fails REF_RE after).
    return Object.hasOwn(this.#small.data, ref) ? Buffer.from(this.#small.data[ref]?.b64 ?? '', 'base64') : undefined
  }

  #path (ref: string): string {
    // Refs come from this store, but a forged one must never escape the folder.
    if (!REF_RE.test(ref)) throw new StorageError(`Invalid blob ref ${JSON.stringify(ref)}`)
    return path.join(this.#dir, ref)
  }

  async write (
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { maxSize?: number } = {}
  ): Promise<BlobInfo> {
    const ref = newBlobRef()
    const counter = new HashingCounter(opts.maxSize)
    const chunks = (async function * () {
      yield * source
    })()
    // Read up to the small limit first: what ends within it never touches a file of its own.
    const head: Uint8Array[] = []
    try {
      for (;;) {
        if (counter.size > SMALL_BLOB_BYTES) break
        const next = await chunks.next()
        if (next.done === true) return await this.#writeSmall(ref, head, counter)
        counter.add(next.value)
        head.push(next.value)
      }
    } catch (err) {
      // Refused (too large) or failed: the source is released as a for-await would release it.
      await chunks.return(undefined).catch(() => {})
      throw err
    }
    const tmp = path.join(this.#tmp, ref)
    const fh = await open(tmp, 'w', 0o600)
    try {
      for (const chunk of head) await writeAll(fh, chunk)
      for await (const chunk of chunks) {
        counter.add(chunk)
        await writeAll(fh, chunk)
      }
      await fh.sync()
      // What is on disk must be all of it: a full disk can cut a write short without an error.
      const written = (await fh.stat()).size
      if (written !== counter.size) {
        throw new StorageError(`Object data cut short: ${written} of ${counter.size} bytes written`)
      }
      await fh.close()
      await rename(tmp, this.#path(ref))
      await this.#dirSync.sync()
    } catch (err) {
      await chunks.return(undefined).catch(() => {})
      await fh.close().catch(() => {})
      await removeIfExists(tmp)
      if (isSyncError(err)) throw err
      throw new StorageError('Cannot write object data', { cause: err })
    }
    return { ref, size: counter.size, sha256: counter.digest() }
  }

  async #writeSmall (ref: string, chunks: Uint8Array[], counter: HashingCounter): Promise<BlobInfo> {
    this.#small.data[ref] = { b64: Buffer.concat(chunks).toString('base64') }
    try {
      await this.#small.commit([ref])
    } catch (err) {
      Reflect.deleteProperty(this.#small.data, ref)
      if (isSyncError(err)) throw err
      throw new StorageError('Cannot write object data', { cause: err })
    }
    return { ref, size: counter.size, sha256: counter.digest() }
  }

  async read (ref: string, range?: ByteRange): Promise<Readable | undefined> {
    const small = this.#smallBytes(ref)
    if (small !== undefined) {
      if (small.length === 0 && range === undefined) return Readable.from([])
      const r = checkRange(range, small.length)
      return Readable.from([small.subarray(r.start, r.end + 1)])
    }
    const size = await this.size(ref)
    if (size === undefined) return undefined
    if (size === 0 && range === undefined) return createReadStream(this.#path(ref))
    const r = checkRange(range, size)
    return createReadStream(this.#path(ref), { start: r.start, end: r.end })
  }

  async size (ref: string): Promise<number | undefined> {
    const small = this.#smallBytes(ref)
    if (small !== undefined) return small.length
    try {
      return (await stat(this.#path(ref))).size
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new StorageError('Cannot stat object data', { cause: err })
    }
  }

  async adopt (file: string, info: { size: number; sha256: string }): Promise<BlobInfo | undefined> {
    const ref = newBlobRef()
    try {
      await rename(file, this.#path(ref))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') return undefined
      throw new StorageError('Cannot take over a data file', { cause: err })
    }
    await this.#dirSync.sync()
    return { ref, size: info.size, sha256: info.sha256 }
  }

  async remove (ref: string): Promise<void> {
    await this.#closeHandles((r) => r === ref)
    if (Object.hasOwn(this.#small.data, ref)) {
      Reflect.deleteProperty(this.#small.data, ref)
      await this.#small.commit([ref])
      return
    }
    await removeIfExists(this.#path(ref))
  }
}
