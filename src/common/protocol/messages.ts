/**
 * CSS <-> ESS messages: a small JSON envelope `{ v, kind, ... }`. Every message is validated on
 * receipt; anything malformed is a ProtocolError (dropped, logged, counted), never a crash.
 */
import { ProtocolError } from '../errors.js'
import type { ObjectMetadata } from '../model.js'
import { createAjv, describeErrors } from '../validate.js'

export const PROTOCOL_VERSION = 1

/** What an ESS holds of one object, reported on every (re)connect: the source of truth for resync. */
export interface Holding {
  objectType: string
  objectId: string
  instanceId: number
  /** received: data complete; consumed: app consumed it; deleted: app confirmed a delete. */
  state: 'received' | 'consumed' | 'deleted'
}

export type UpMessage =
  | { v: 1, kind: 'register', properties: Record<string, string>, codeVersion: string, holdings: Holding[] }
  /** `errors`: malformed CSS messages this edge dropped since it started. */
  | { v: 1, kind: 'heartbeat', errors: number }
  | { v: 1, kind: 'ack', state: 'received' | 'consumed' | 'deleted' | 'error', objectType: string, objectId: string, instanceId: number, message?: string }

export type DownMessage =
  | { v: 1, kind: 'registered', resent: number }
  /** `data` is base64 of the whole data when it is small enough to travel inline. */
  | { v: 1, kind: 'update', meta: ObjectMetadata, data?: string }
  | { v: 1, kind: 'delete', objectType: string, objectId: string, instanceId: number }

const name = { type: 'string', minLength: 1, maxLength: 128 }
const upSchema = {
  type: 'object',
  required: ['v', 'kind'],
  properties: { v: { const: PROTOCOL_VERSION }, kind: { enum: ['register', 'heartbeat', 'ack'] } },
  oneOf: [
    {
      properties: {
        v: true,
        kind: { const: 'register' },
        properties: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 }, maxProperties: 64 },
        codeVersion: { type: 'string', maxLength: 64 },
        holdings: {
          type: 'array',
          maxItems: 100000,
          items: {
            type: 'object',
            required: ['objectType', 'objectId', 'instanceId', 'state'],
            additionalProperties: false,
            properties: { objectType: name, objectId: name, instanceId: { type: 'integer', minimum: 1 }, state: { enum: ['received', 'consumed', 'deleted'] } }
          }
        }
      },
      required: ['properties', 'codeVersion', 'holdings'],
      additionalProperties: false
    },
    {
      properties: { v: true, kind: { const: 'heartbeat' }, errors: { type: 'integer', minimum: 0 } },
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
        message: { type: 'string', maxLength: 1024 }
      },
      required: ['state', 'objectType', 'objectId', 'instanceId'],
      additionalProperties: false
    }
  ]
}

const downSchema = {
  type: 'object',
  required: ['v', 'kind'],
  properties: { v: { const: PROTOCOL_VERSION }, kind: { enum: ['registered', 'update', 'delete'] } },
  oneOf: [
    { properties: { v: true, kind: { const: 'registered' }, resent: { type: 'integer' } }, required: ['resent'], additionalProperties: false },
    {
      properties: {
        v: true,
        kind: { const: 'update' },
        meta: { type: 'object', required: ['objectID', 'objectType', 'instanceID', 'dataID', 'objectSize'], properties: { objectID: name, objectType: name, instanceID: { type: 'integer', minimum: 1 } } },
        data: { type: 'string' }
      },
      required: ['meta'],
      additionalProperties: false
    },
    {
      properties: { v: true, kind: { const: 'delete' }, objectType: name, objectId: name, instanceId: { type: 'integer', minimum: 1 } },
      required: ['objectType', 'objectId', 'instanceId'],
      additionalProperties: false
    }
  ]
}

const ajv = createAjv({ strict: false })
const validateUp = ajv.compile<UpMessage>(upSchema)
const validateDown = ajv.compile<DownMessage>(downSchema)

function parse (payload: Buffer | Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(payload).toString('utf8'))
  } catch (err) {
    throw new ProtocolError('Message is not valid JSON', { cause: err })
  }
}

export function decodeUp (payload: Buffer | Uint8Array): UpMessage {
  const msg = parse(payload)
  if (!validateUp(msg)) throw new ProtocolError(`Invalid message: ${describeErrors(validateUp.errors).slice(0, 5).join('; ')}`)
  return msg
}

export function decodeDown (payload: Buffer | Uint8Array): DownMessage {
  const msg = parse(payload)
  if (!validateDown(msg)) throw new ProtocolError(`Invalid message: ${describeErrors(validateDown.errors).slice(0, 5).join('; ')}`)
  return msg
}

export function encode (msg: UpMessage | DownMessage): Buffer {
  return Buffer.from(JSON.stringify(msg))
}
