/**
 * Resumable uploads (`Content-Range: bytes a-b/total` on PUT .../data). Each piece is stored as a
 * blob as it arrives; a piece cut off by a broken connection stores nothing, and the client asks
 * where to go on (`GET .../upload`) and re-sends from there. When the last byte arrives the pieces
 * are joined into one blob, checked against the announced sha256 (if any), and only then does the
 * object get a new instance and go out to its destinations.
 * Sessions and pieces are kept in the store (settings), so they survive a CSS restart and the
 * pieces of one upload may go to different CSS instances behind a load balancer.
 */
import { randomBytes } from 'node:crypto'
import { SyncError, SyncErrorCode, ValidationError } from '../common/errors.js'
import type { ObjectKey, StoredObject } from '../common/model.js'
import type { Store } from '../storage/index.js'
import type { ObjectService } from './objects.js'

export interface ContentRange {
  start: number
  end: number
  total: number
}

/** An upload under way, shared by every CSS instance (a settings entry `upload/<object>`). */
interface Session {
  /** Tells a session from the one that replaced it (pieces are filed under it). */
  token: string
  total: number
  sha256?: string
  touched: number
}
/**
 * One stored piece (`upload/<object>/<token>/<start>`): first writer wins, so a piece sent twice,
 * to two instances, is kept once.
 */
interface Piece {
  ref: string
  size: number
}

/** An unfinished upload untouched this long is dropped with its pieces. */
const SESSION_IDLE_MS = 24 * 3600 * 1000
/** How often an instance looks for idle sessions. */
const SWEEP_EVERY_MS = 3600 * 1000

export function parseContentRange (h: string): ContentRange {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(h.trim())
  if (m === null) throw new ValidationError(`Content-Range must be "bytes start-end/total", not "${h}"`)
  const r = { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) }
  if (r.end < r.start || r.end >= r.total) {
    throw new ValidationError(`Content-Range ${h} is not inside the total size`)
  }
  return r
}

function sessionName (k: ObjectKey): string {
  const e = encodeURIComponent
  return `upload/${e(k.orgId)}/${e(k.objectType)}/${e(k.objectId)}`
}
function pieceName (k: ObjectKey, token: string, start: number): string {
  // Zero-padded: listed in name order, pieces come in byte order.
  return `${sessionName(k)}/${token}/${String(start).padStart(16, '0')}`
}

export class Uploads {
  /** Pieces this instance is storing right now (`receiving` in the status). */
  readonly #busy = new Set<string>()
  readonly #store: Store
  readonly #objects: ObjectService
  readonly #maxData: number
  #swept = 0

  constructor (store: Store, objects: ObjectService, maxDataSize: number) {
    this.#store = store
    this.#objects = objects
    this.#maxData = maxDataSize
  }

  async #session (key: ObjectKey): Promise<Session | undefined> {
    const v = await this.#store.settings.get(sessionName(key))
    return v === undefined ? undefined : (JSON.parse(v) as Session)
  }

  /** Bytes stored so far: the pieces from byte 0 on, each starting where the last ended. */
  async #received (key: ObjectKey, s: Session): Promise<{ received: number; pieces: Piece[] }> {
    const pieces: Piece[] = []
    let received = 0
    for (const [name, v] of await this.#store.settings.list(`${sessionName(key)}/${s.token}/`)) {
      const p = JSON.parse(v) as Piece
      if (name !== pieceName(key, s.token, received)) break
      pieces.push(p)
      received += p.size
    }
    return { received, pieces }
  }

  async status (key: ObjectKey): Promise<{ received: number; total: number; receiving: boolean } | undefined> {
    const s = await this.#session(key)
    if (s === undefined) return undefined
    // `receiving`: a piece is being stored right now (a client that lost its connection waits for
    // false before resuming: the piece may still be cut off and dropped).
    const { received } = await this.#received(key, s)
    return { received, total: s.total, receiving: this.#busy.has(sessionName(key)) }
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
    let s = await this.#session(key)
    if (s !== undefined && s.total !== range.total) {
      if (range.start !== 0) {
        throw new SyncError(
          SyncErrorCode.CONFLICT,
          `An upload of ${s.total} bytes is under way; start again at byte 0 to replace it`
        )
      }
      await this.#drop(key)
      s = undefined
    }
    if (s === undefined) {
      if (range.start !== 0) {
        throw new SyncError(SyncErrorCode.CONFLICT, 'No upload under way: start at byte 0')
      }
      const fresh: Session = { token: randomBytes(6).toString('hex'), total: range.total, touched: Date.now() }
      s = JSON.parse(await this.#store.settings.putIfAbsent(sessionName(key), JSON.stringify(fresh))) as Session
    }
    const at = await this.#received(key, s)
    if (range.start !== at.received) {
      throw new SyncError(
        SyncErrorCode.CONFLICT,
        `Expected the piece starting at byte ${at.received}, got ${range.start}`
      )
    }
    const busyKey = sessionName(key)
    if (this.#busy.has(busyKey)) {
      throw new SyncError(SyncErrorCode.CONFLICT, 'Another piece of this upload is being received')
    }
    this.#busy.add(busyKey)
    let kept: Piece
    try {
      const want = range.end - range.start + 1
      const blob = await this.#store.blobs.write(body, { maxSize: want })
      if (blob.size !== want) {
        await this.#store.blobs.remove(blob.ref)
        throw new ValidationError(`The piece has ${blob.size} bytes, Content-Range announced ${want}`)
      }
      const mine: Piece = { ref: blob.ref, size: blob.size }
      kept = JSON.parse(
        await this.#store.settings.putIfAbsent(pieceName(key, s.token, range.start), JSON.stringify(mine))
      ) as Piece
      // The same piece reached another instance first: its copy counts, this one goes.
      if (kept.ref !== mine.ref) {
        await this.#store.blobs.remove(mine.ref)
        return { received: range.start + kept.size, total: s.total }
      }
      const touched: Session = { ...s, touched: Date.now(), ...(sha256 === undefined ? {} : { sha256 }) }
      await this.#store.settings.set(sessionName(key), JSON.stringify(touched))
      s = touched
    } finally {
      this.#busy.delete(busyKey)
    }
    const received = range.start + kept.size
    if (received < s.total) return { received, total: s.total }
    const { pieces } = await this.#received(key, s)
    await this.#forget(key, s)
    try {
      const obj = await this.#objects.putData(key, this.#joined(pieces), expectInstanceId, s.sha256)
      return { received, total: s.total, obj }
    } finally {
      for (const p of pieces) await this.#store.blobs.remove(p.ref)
    }
  }

  async * #joined (pieces: Piece[]): AsyncGenerator<Uint8Array> {
    for (const p of pieces) {
      const stream = await this.#store.blobs.read(p.ref)
      if (stream === undefined) {
        throw new SyncError(SyncErrorCode.STORAGE, 'A stored piece of the upload is missing')
      }
      for await (const c of stream) yield c as Uint8Array
    }
  }

  /** Removes a session's entries (not its blobs). */
  async #forget (key: ObjectKey, s: Session): Promise<void> {
    for (const [name] of await this.#store.settings.list(`${sessionName(key)}/${s.token}/`)) {
      await this.#store.settings.remove(name)
    }
    await this.#store.settings.remove(sessionName(key))
  }

  async #drop (key: ObjectKey): Promise<void> {
    const s = await this.#session(key)
    if (s === undefined) return
    const entries = await this.#store.settings.list(`${sessionName(key)}/${s.token}/`)
    await this.#forget(key, s)
    for (const [, v] of entries) await this.#store.blobs.remove((JSON.parse(v) as Piece).ref)
  }

  async #dropIdle (): Promise<void> {
    const now = Date.now()
    if (now - this.#swept < SWEEP_EVERY_MS) return
    this.#swept = now
    for (const [name, v] of await this.#store.settings.list('upload/')) {
      if (name.split('/').length !== 4) continue // a piece, not a session
      const s = JSON.parse(v) as Session
      if (now - s.touched <= SESSION_IDLE_MS) continue
      const [, orgId = '', objectType = '', objectId = ''] = name.split('/').map(decodeURIComponent)
      await this.#drop({ orgId, objectType, objectId })
    }
  }
}
