/** Object data as plain files: streamed to a temp file, fsynced, then renamed into place. */
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { isSyncError, StorageError } from '../../common/errors.js'
import { checkRange, HashingCounter, newBlobRef } from '../common.js'
import type { BlobInfo, BlobStore, ByteRange } from '../types.js'
import { fsyncDir, removeIfExists } from './durable-json-file.js'

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

export class FileBlobStore implements BlobStore {
  readonly #dir: string
  readonly #tmp: string
  constructor (dir: string) {
    this.#dir = dir
    this.#tmp = path.join(dir, '.tmp')
  }

  async init (): Promise<void> {
    await mkdir(this.#tmp, { recursive: true })
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
    const tmp = path.join(this.#tmp, ref)
    const counter = new HashingCounter(opts.maxSize)
    const fh = await open(tmp, 'w', 0o600)
    try {
      for await (const chunk of source) {
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
      await fsyncDir(this.#dir)
    } catch (err) {
      await fh.close().catch(() => {})
      await removeIfExists(tmp)
      if (isSyncError(err)) throw err
      throw new StorageError('Cannot write object data', { cause: err })
    }
    return { ref, size: counter.size, sha256: counter.digest() }
  }

  async read (ref: string, range?: ByteRange): Promise<Readable | undefined> {
    const size = await this.size(ref)
    if (size === undefined) return undefined
    if (size === 0 && range === undefined) return createReadStream(this.#path(ref))
    const r = checkRange(range, size)
    return createReadStream(this.#path(ref), { start: r.start, end: r.end })
  }

  async size (ref: string): Promise<number | undefined> {
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
    await fsyncDir(this.#dir)
    return { ref, size: info.size, sha256: info.sha256 }
  }

  async remove (ref: string): Promise<void> {
    await removeIfExists(this.#path(ref))
  }
}
