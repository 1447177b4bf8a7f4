/**
 * Resumable uploads (`Content-Range: bytes a-b/total` on PUT .../data). Each piece is stored as a
 * blob as it arrives; a piece cut off by a broken connection stores nothing, and the client asks
 * where to go on (`GET .../upload`) and re-sends from there. When the last byte arrives the pieces
 * are joined into one blob, checked against the announced sha256 (if any), and only then does the
 * object get a new instance and go out to its destinations.
 * Sessions live in memory: they survive broken connections, not a CSS restart.
 */
import { SyncError, SyncErrorCode, ValidationError } from '../common/errors.js'
import type { ObjectKey, StoredObject } from '../common/model.js'
import type { Store } from '../storage/index.js'
import type { ObjectService } from './objects.js'

export interface ContentRange {
  start: number
  end: number
  total: number
}

interface Session {
  total: number
  received: number
  parts: Array<{ ref: string; size: number }>
  sha256?: string
  busy: boolean
  touched: number
}

/** An unfinished upload untouched this long is dropped with its pieces. */
const SESSION_IDLE_MS = 24 * 3600 * 1000

export function parseContentRange (h: string): ContentRange {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(h.trim())
  if (m === null) throw new ValidationError(`Content-Range must be "bytes start-end/total", not "${h}"`)
  const r = { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) }
  if (r.end < r.start || r.end >= r.total) {
    throw new ValidationError(`Content-Range ${h} is not inside the total size`)
  }
  return r
}

function id (k: ObjectKey): string {
  return `${k.orgId}/${k.objectType}/${k.objectId}`
}

export class Uploads {
  readonly #sessions = new Map<string, Session>()
  readonly #store: Store
  readonly #objects: ObjectService
  readonly #maxData: number

  constructor (store: Store, objects: ObjectService, maxDataSize: number) {
    this.#store = store
    this.#objects = objects
    this.#maxData = maxDataSize
  }

  status (key: ObjectKey): { received: number; total: number; receiving: boolean } | undefined {
    const s = this.#sessions.get(id(key))
    // `receiving`: a piece is being stored right now (a client that lost its connection waits for
    // false before resuming: the piece may still be cut off and dropped).
    return s === undefined ? undefined : { received: s.received, total: s.total, receiving: s.busy }
  }

  /** Stores one piece. Returns the object when this piece completed the upload. */
  async piece (
    key: ObjectKey,
    range: ContentRange,
    body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    sha256: string | undefined,
    expectInstanceId?: number
  ): Promise<{ received: number; total: number; obj?: StoredObject }> {
    this.#objects.checkWritable(await this.#store.objects.get(key), key)
    if (range.total > this.#maxData) {
      throw new SyncError(
        SyncErrorCode.BODY_TOO_LARGE,
        `Data of ${range.total} bytes is over MaxDataSize (${this.#maxData})`
      )
    }
    await this.#dropIdle()
    let s = this.#sessions.get(id(key))
    if (s !== undefined && s.total !== range.total) {
      if (range.start !== 0) {
        throw new SyncError(
          SyncErrorCode.CONFLICT,
          `An upload of ${s.total} bytes is under way; start again at byte 0 to replace it`
        )
      }
      await this.#drop(key, s)
      s = undefined
    }
    if (s === undefined) {
      if (range.start !== 0) {
        throw new SyncError(SyncErrorCode.CONFLICT, 'No upload under way: start at byte 0')
      }
      s = { total: range.total, received: 0, parts: [], busy: false, touched: Date.now() }
      this.#sessions.set(id(key), s)
    }
    if (range.start !== s.received) {
      throw new SyncError(
        SyncErrorCode.CONFLICT,
        `Expected the piece starting at byte ${s.received}, got ${range.start}`
      )
    }
    if (s.busy) throw new SyncError(SyncErrorCode.CONFLICT, 'Another piece of this upload is being received')
    s.busy = true
    try {
      const want = range.end - range.start + 1
      const blob = await this.#store.blobs.write(body, { maxSize: want })
      if (blob.size !== want) {
        await this.#store.blobs.remove(blob.ref)
        throw new ValidationError(`The piece has ${blob.size} bytes, Content-Range announced ${want}`)
      }
      s.parts.push({ ref: blob.ref, size: blob.size })
      s.received += blob.size
      s.touched = Date.now()
      if (sha256 !== undefined) s.sha256 = sha256
    } finally {
      s.busy = false
    }
    if (s.received < s.total) return { received: s.received, total: s.total }
    this.#sessions.delete(id(key))
    try {
      const obj = await this.#objects.putData(key, this.#joined(s), expectInstanceId, s.sha256)
      return { received: s.received, total: s.total, obj }
    } finally {
      for (const p of s.parts) await this.#store.blobs.remove(p.ref)
    }
  }

  async * #joined (s: Session): AsyncGenerator<Uint8Array> {
    for (const p of s.parts) {
      const stream = await this.#store.blobs.read(p.ref)
      if (stream === undefined) {
        throw new SyncError(SyncErrorCode.STORAGE, 'A stored piece of the upload is missing')
      }
      for await (const c of stream) yield c as Uint8Array
    }
  }

  async #drop (key: ObjectKey, s: Session): Promise<void> {
    this.#sessions.delete(id(key))
    for (const p of s.parts) await this.#store.blobs.remove(p.ref)
  }

  async #dropIdle (): Promise<void> {
    const now = Date.now()
    for (const [k, s] of [...this.#sessions]) {
      if (!s.busy && now - s.touched > SESSION_IDLE_MS) {
        this.#sessions.delete(k)
        for (const p of s.parts) await this.#store.blobs.remove(p.ref)
      }
    }
  }
}
