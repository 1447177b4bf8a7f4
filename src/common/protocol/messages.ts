/**
 * CSS <-> ESS messages: a small JSON envelope `{ v, kind, ... }`. Every message is validated on
 * receipt; anything malformed is a ProtocolError (dropped, logged, counted), never a crash.
 */
import { createHash } from 'node:crypto'
import { ProtocolError } from '../errors.js'
import type { ObjectMetadata } from '../model.js'
import { createAjv, describeErrors, type ValidateFunction } from '../validate.js'

export const PROTOCOL_VERSION = 1

/** What an ESS holds of one object, reported on every (re)connect: the source of truth for resync. */
export interface Holding {
  objectType: string
  objectId: string
  instanceId: number
  /**
   * received: data complete; consumed: app consumed it; deleted: app confirmed a delete;
   * error: a plugin refused it.
   */
  state: 'received' | 'consumed' | 'deleted' | 'error'
  /** With `error`: why. */
  message?: string
  /**
   * sha256 (hex) of the data the edge holds, hashed from its store at register (objects up to
   * 1 MiB): the CSS compares it with the instance's, so content changed on the device shows.
   */
  hash?: string
}

export type UpMessage =
  | {
    v: 1
    kind: 'register'
    properties: Record<string, string>
    codeVersion: string
    holdings: Holding[]
    /** The channel the edge uses now (absent from older edges: mqtt). */
    protocol?: 'mqtt' | 'http'
  }
  /** `errors`: malformed CSS messages this edge dropped since it started. */
  | { v: 1; kind: 'heartbeat'; errors: number; status?: Record<string, Record<string, unknown>> }
  | {
    v: 1
    kind: 'ack'
    state: 'received' | 'consumed' | 'deleted' | 'error'
    objectType: string
    objectId: string
    instanceId: number
    message?: string
    /** The instance's traceId, echoed (see ObjectMetadata.traceId). */
    trace?: string
  }
  | FetchMessage
  | BusyMessage
  | GoneMessage
  | ChunkMessage
  /** Edge to cloud: an object created on the edge; small data inline (base64), else the CSS pulls it. */
  | { v: 1; kind: 'offer'; meta: ObjectMetadata; data?: string; chunkSize?: number }
  | ProgressMessage
  /** Edge to cloud: an app deleted an object of this edge (up to `instanceId`): the CSS removes its copy. */
  | { v: 1; kind: 'withdraw'; objectType: string; objectId: string; instanceId: number }

export type DownMessage =
  | { v: 1; kind: 'registered'; resent: number }
  /** The CSS may have missed messages (it resubscribed): register again within `withinMs` (random). */
  | { v: 1; kind: 'reregister'; withinMs: number }
  /**
   * `data` is base64 of the whole data when it is small enough to travel inline; otherwise the
   * edge pulls it in chunks of at most `chunkSize` bytes.
   */
  | { v: 1; kind: 'update'; meta: ObjectMetadata; data?: string; chunkSize?: number; sig?: Sig }
  /**
   * An operator's lifecycle action on one of the edge's plugins (from the CSS's REST API, audited
   * there). The edge answers with a heartbeat carrying the plugins' new states.
   */
  | { v: 1; kind: 'plugin'; plugin: string; action: 'start' | 'stop' | 'pause' | 'resume' }
  /** Key rotation: trust `publicKey` (keyId:base64) too; signed by a key the edge already trusts. */
  | { v: 1; kind: 'trust'; publicKey: string; sig: Sig }
  /** `sig`: over deleteStatement(org, ids) (protocol/statements.ts), as updates are signed. */
  | { v: 1; kind: 'delete'; objectType: string; objectId: string; instanceId: number; sig?: Sig }
  | BusyMessage
  | GoneMessage
  | ChunkMessage
  | FetchMessage
  /**
   * Edge to cloud: the CSS stored (`stored`) or an app consumed (`consumed`) an object the edge
   * offered, or removed its copy after a withdraw (`withdrawn`).
   */
  | {
    v: 1
    kind: 'state'
    state: 'stored' | 'consumed' | 'withdrawn'
    objectType: string
    objectId: string
    instanceId: number
  }

/** An Ed25519 signature over the canonical JSON of the signed part (see security/signing.ts). */
export interface Sig {
  keyId: string
  value: string
}

interface InstanceRef {
  v: 1
  objectType: string
  objectId: string
  instanceId: number
}
/** Asks for `length` bytes of an instance's data from `offset` (chunked transfer, pulled by the receiver). */
export interface FetchMessage extends InstanceRef {
  kind: 'fetch'
  offset: number
  length: number
}
/** Bytes of a chunked transfer the receiver holds durably; `detail` reports repairs (hash mismatch). */
export interface ProgressMessage extends InstanceRef {
  kind: 'progress'
  bytes: number
  detail?: string
}
/** The sender is at its cap of concurrent transfers: ask again after `retryAfterMs`. */
export interface BusyMessage extends InstanceRef {
  kind: 'busy'
  retryAfterMs: number
}
/** The instance asked for is no longer current (a newer one or a delete is on its way). */
export interface GoneMessage extends InstanceRef {
  kind: 'gone'
}

/** One chunk, sent as a binary frame (see encodeChunk), never as JSON. */
export interface ChunkMessage extends InstanceRef {
  kind: 'chunk'
  offset: number
  /** sha256 (hex) of `data`: a chunk damaged on the way is detected and asked for again. */
  sha256: string
  data: Buffer
}

/** Largest chunk an edge may ask for. */
export const MAX_CHUNK_SIZE = 4 * 1024 * 1024

const name = { type: 'string', minLength: 1, maxLength: 128 }
const instance = { v: true, objectType: name, objectId: name, instanceId: { type: 'integer', minimum: 1 } }
const metaSchema = {
  type: 'object',
  required: ['objectID', 'objectType', 'instanceID', 'dataID', 'objectSize'],
  properties: {
    objectID: name,
    objectType: name,
    instanceID: { type: 'integer', minimum: 1 },
    dataID: { type: 'integer', minimum: 0 },
    objectSize: { type: 'integer', minimum: 0 },
    dataHash: { type: 'string', pattern: '^[0-9a-f]{64}$' }
  }
}
const sigSchema = {
  type: 'object',
  required: ['keyId', 'value'],
  additionalProperties: false,
  properties: { keyId: { type: 'string', maxLength: 64 }, value: { type: 'string', maxLength: 256 } }
}
const fetchSchema = {
  properties: {
    ...instance,
    kind: { const: 'fetch' },
    offset: { type: 'integer', minimum: 0 },
    length: { type: 'integer', minimum: 1, maximum: MAX_CHUNK_SIZE }
  },
  required: ['objectType', 'objectId', 'instanceId', 'offset', 'length'],
  additionalProperties: false
}
const busySchema = {
  properties: {
    ...instance,
    kind: { const: 'busy' },
    retryAfterMs: { type: 'integer', minimum: 0, maximum: 600000 }
  },
  required: ['objectType', 'objectId', 'instanceId', 'retryAfterMs'],
  additionalProperties: false
}
const goneSchema = {
  properties: { ...instance, kind: { const: 'gone' } },
  required: ['objectType', 'objectId', 'instanceId'],
  additionalProperties: false
}
const upSchema = {
  type: 'object',
  required: ['v', 'kind'],
  properties: {
    v: { const: PROTOCOL_VERSION },
    kind: { enum: ['register', 'heartbeat', 'ack', 'fetch', 'progress', 'busy', 'gone', 'offer', 'withdraw'] }
  },
  oneOf: [
    {
      properties: {
        v: true,
        kind: { const: 'register' },
        properties: {
          type: 'object',
          additionalProperties: { type: 'string', maxLength: 256 },
          maxProperties: 64
        },
        codeVersion: { type: 'string', maxLength: 64 },
        protocol: { enum: ['mqtt', 'http'] },
        holdings: {
          type: 'array',
          maxItems: 100000,
          items: {
            type: 'object',
            required: ['objectType', 'objectId', 'instanceId', 'state'],
            additionalProperties: false,
            properties: {
              objectType: name,
              objectId: name,
              instanceId: { type: 'integer', minimum: 1 },
              state: { enum: ['received', 'consumed', 'deleted', 'error'] },
              message: { type: 'string', maxLength: 1024 },
              hash: { type: 'string', pattern: '^[0-9a-f]{64}$' }
            }
          }
        }
      },
      required: ['properties', 'codeVersion', 'holdings'],
      additionalProperties: false
    },
    {
      properties: {
        v: true,
        kind: { const: 'heartbeat' },
        errors: { type: 'integer', minimum: 0 },
        status: {
          type: 'object',
          maxProperties: 16,
          additionalProperties: { type: 'object', maxProperties: 64 }
        }
      },
      required: ['errors'],
      additionalProperties: false
    },
    {
      properties: {
        v: true,
        kind: { const: 'ack' },
        state: { enum: ['received', 'consumed', 'deleted', 'error'] },
        objectType: name,
        objectId: name,
        instanceId: { type: 'integer', minimum: 1 },
        message: { type: 'string', maxLength: 1024 },
        trace: { type: 'string', maxLength: 128 }
      },
      required: ['state', 'objectType', 'objectId', 'instanceId'],
      additionalProperties: false
    },
    fetchSchema,
    busySchema,
    goneSchema,
    {
      properties: { ...instance, kind: { const: 'withdraw' } },
      required: ['objectType', 'objectId', 'instanceId'],
      additionalProperties: false
    },
    {
      properties: {
        v: true,
        kind: { const: 'offer' },
        meta: metaSchema,
        data: { type: 'string' },
        chunkSize: { type: 'integer', minimum: 1, maximum: MAX_CHUNK_SIZE }
      },
      required: ['meta'],
      additionalProperties: false
    },
    {
      properties: {
        ...instance,
        kind: { const: 'progress' },
        bytes: { type: 'integer', minimum: 0 },
        detail: { type: 'string', maxLength: 256 }
      },
      required: ['objectType', 'objectId', 'instanceId', 'bytes'],
      additionalProperties: false
    }
  ]
}

const downSchema = {
  type: 'object',
  required: ['v', 'kind'],
  properties: {
    v: { const: PROTOCOL_VERSION },
    kind: {
      enum: ['registered', 'reregister', 'update', 'delete', 'busy', 'gone', 'fetch', 'state', 'trust', 'plugin']
    }
  },
  oneOf: [
    {
      properties: { v: true, kind: { const: 'registered' }, resent: { type: 'integer' } },
      required: ['resent'],
      additionalProperties: false
    },
    {
      properties: {
        v: true,
        kind: { const: 'reregister' },
        withinMs: { type: 'integer', minimum: 0, maximum: 600_000 }
      },
      required: ['withinMs'],
      additionalProperties: false
    },
    {
      properties: {
        v: true,
        kind: { const: 'update' },
        meta: metaSchema,
        data: { type: 'string' },
        chunkSize: { type: 'integer', minimum: 1, maximum: MAX_CHUNK_SIZE },
        sig: sigSchema
      },
      required: ['meta'],
      additionalProperties: false
    },
    {
      properties: { ...instance, kind: { const: 'delete' }, sig: sigSchema },
      required: ['objectType', 'objectId', 'instanceId'],
      additionalProperties: false
    },
    busySchema,
    goneSchema,
    fetchSchema,
    {
      properties: {
        v: true,
        kind: { const: 'plugin' },
        plugin: name,
        action: { enum: ['start', 'stop', 'pause', 'resume'] }
      },
      required: ['plugin', 'action'],
      additionalProperties: false
    },
    {
      properties: {
        v: true,
        kind: { const: 'trust' },
        publicKey: { type: 'string', maxLength: 512 },
        sig: sigSchema
      },
      required: ['publicKey', 'sig'],
      additionalProperties: false
    },
    {
      properties: { ...instance, kind: { const: 'state' }, state: { enum: ['stored', 'consumed', 'withdrawn'] } },
      required: ['objectType', 'objectId', 'instanceId', 'state'],
      additionalProperties: false
    }
  ]
}

const chunkHeaderSchema = {
  type: 'object',
  properties: {
    ...instance,
    kind: { const: 'chunk' },
    offset: { type: 'integer', minimum: 0 },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }
  },
  required: ['v', 'kind', 'objectType', 'objectId', 'instanceId', 'offset', 'sha256'],
  additionalProperties: false
}

const ajv = createAjv({ strict: false })
/** Compiled on first use: an ESS never decodes up messages, nor a CSS down ones (start time, #22). */
function lazily<T> (schema: object): () => ValidateFunction<T> {
  let compiled: ValidateFunction<T> | undefined
  return () => (compiled ??= ajv.compile<T>(schema))
}
const upValidator = lazily<UpMessage>(upSchema)
const downValidator = lazily<DownMessage>(downSchema)
const chunkHeaderValidator = lazily<Omit<ChunkMessage, 'data'>>(chunkHeaderSchema)

/**
 * Chunk frame: byte 0x00 (JSON never starts with it), a 4-byte big-endian header length, the JSON
 * header, then the raw bytes: no base64, so a chunk costs its own size on the wire.
 */
const FRAME_MARK = 0x00

export function encodeChunk (msg: ChunkMessage): Buffer {
  const { data, ...header } = msg
  const h = Buffer.from(JSON.stringify(header))
  const prefix = Buffer.alloc(5)
  prefix[0] = FRAME_MARK
  prefix.writeUInt32BE(h.length, 1)
  return Buffer.concat([prefix, h, data])
}

/**
 * A chunk frame allocated once, for the sender to read the data straight into `data`; `seal()`
 * then writes the data's sha256 into the header (a fixed-width slot). No copies of the data.
 */
export function allocChunkFrame (
  ids: { objectType: string; objectId: string; instanceId: number },
  offset: number,
  length: number
): { frame: Buffer; data: Buffer; seal: (sha256?: string) => void; sha256: () => string } {
  const header = Buffer.from(JSON.stringify({ v: 1, kind: 'chunk', ...ids, offset, sha256: '0'.repeat(64) }))
  const frame = Buffer.allocUnsafe(5 + header.length + length)
  frame[0] = FRAME_MARK
  frame.writeUInt32BE(header.length, 1)
  header.copy(frame, 5)
  const data = frame.subarray(5 + header.length)
  const slot = 5 + header.indexOf('"sha256":"') + 10
  return {
    frame,
    data,
    // `sha256`: the data's hash when the sender knows it already (the same chunk sent again).
    seal: (sha256?: string) => {
      frame.write(sha256 ?? createHash('sha256').update(data).digest('hex'), slot, 'latin1')
    },
    sha256: () => frame.toString('latin1', slot, slot + 64)
  }
}

function decodeChunk (payload: Buffer): ChunkMessage {
  if (payload.length < 5) throw new ProtocolError('Truncated chunk frame')
  const len = payload.readUInt32BE(1)
  if (len > 4096 || 5 + len > payload.length) {
    throw new ProtocolError('Chunk frame header length is out of bounds')
  }
  const header = parse(payload.subarray(5, 5 + len))
  const validateChunkHeader = chunkHeaderValidator()
  if (!validateChunkHeader(header)) {
    throw new ProtocolError(
      `Invalid chunk header: ${describeErrors(validateChunkHeader.errors).slice(0, 5).join('; ')}`
    )
  }
  return { ...header, data: payload.subarray(5 + len) }
}

function parse (payload: Buffer | Uint8Array): unknown {
  try {
    // A Buffer is read in place (Buffer.from would copy every message first).
    const b = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    return JSON.parse(b.toString('utf8'))
  } catch (err) {
    throw new ProtocolError('Message is not valid JSON', { cause: err })
  }
}

export function decodeUp (payload: Buffer | Uint8Array): UpMessage {
  if (payload[0] === FRAME_MARK) {
    return decodeChunk(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength))
  }
  const msg = parse(payload)
  const validateUp = upValidator()
  if (!validateUp(msg)) {
    throw new ProtocolError(`Invalid message: ${describeErrors(validateUp.errors).slice(0, 5).join('; ')}`)
  }
  return msg
}

export function decodeDown (payload: Buffer | Uint8Array): DownMessage {
  if (payload[0] === FRAME_MARK) {
    return decodeChunk(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength))
  }
  const msg = parse(payload)
  const validateDown = downValidator()
  if (!validateDown(msg)) {
    throw new ProtocolError(`Invalid message: ${describeErrors(validateDown.errors).slice(0, 5).join('; ')}`)
  }
  return msg
}

export function encode (msg: Exclude<UpMessage | DownMessage, ChunkMessage>): Buffer {
  return Buffer.from(JSON.stringify(msg))
}
