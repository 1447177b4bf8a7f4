/** Helpers shared by storage backends (no third-party imports). */
import { createHash, randomUUID } from 'node:crypto'
import { SyncErrorCode, SyncError, ValidationError } from '../common/errors.js'
import type { DestinationKey, ObjectKey } from '../common/model.js'

export const DEFAULT_PAGE_LIMIT = 100
export const MAX_PAGE_LIMIT = 1000

export function pageLimit (limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_LIMIT
  return Math.max(1, Math.min(MAX_PAGE_LIMIT, Math.floor(limit)))
}

/** Cursors are opaque to callers: base64url of the last sort key returned. */
export function encodeCursor (sortKey: string): string {
  return Buffer.from(sortKey, 'utf8').toString('base64url')
}

export function decodeCursor (cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined
  const s = Buffer.from(cursor, 'base64url').toString('utf8')
  if (s === '' || encodeCursor(s) !== cursor) throw new ValidationError('Invalid cursor')
  return s
}

// \u0001 sorts before every character allowed in names, so prefix order equals tuple order.
const SEP = '\u0001'
export function objectId (k: ObjectKey): string {
  return [k.orgId, k.objectType, k.objectId].join(SEP)
}
export function nodeId (k: DestinationKey): string {
  return [k.orgId, k.destinationType, k.destinationId].join(SEP)
}
export function deliveryId (o: ObjectKey, d: { destinationType: string; destinationId: string }): string {
  return [o.orgId, o.objectType, o.objectId, d.destinationType, d.destinationId].join(SEP)
}
export function joinKey (...parts: string[]): string {
  return parts.join(SEP)
}

export function newBlobRef (): string {
  return randomUUID()
}

export function preconditionFailed (expected: number, actual: number): SyncError {
  return new SyncError(
    SyncErrorCode.PRECONDITION_FAILED,
    `Expected instance ${expected}, current is ${actual}`
  )
}

export function tooLarge (max: number): SyncError {
  return new SyncError(SyncErrorCode.BODY_TOO_LARGE, `Data exceeds the limit of ${max} bytes`)
}

export function checkRange (
  range: { start: number; end: number } | undefined,
  size: number
): { start: number; end: number } {
  if (range === undefined) return { start: 0, end: size - 1 }
  if (
    !Number.isInteger(range.start) ||
    !Number.isInteger(range.end) ||
    range.start < 0 ||
    range.end < range.start ||
    range.start >= size
  ) {
    throw new SyncError(
      SyncErrorCode.RANGE_NOT_SATISFIABLE,
      `Range ${range.start}-${range.end} is outside 0-${size - 1}`
    )
  }
  return { start: range.start, end: Math.min(range.end, size - 1) }
}

/** A running sha256 + byte count over a stream of chunks, enforcing a size limit. */
export class HashingCounter {
  readonly #hash = createHash('sha256')
  readonly maxSize: number
  size = 0
  constructor (maxSize: number = Number.MAX_SAFE_INTEGER) {
    this.maxSize = maxSize
  }

  add (chunk: Uint8Array): void {
    this.size += chunk.byteLength
    if (this.size > this.maxSize) throw tooLarge(this.maxSize)
    this.#hash.update(chunk)
  }

  digest (): string {
    return this.#hash.digest('hex')
  }
}

export function nowIso (): string {
  return new Date().toISOString()
}

export function staleInstance (given: number, current: number): SyncError {
  return new SyncError(SyncErrorCode.CONFLICT, `Instance ${given} is not newer than the current ${current}`)
}
