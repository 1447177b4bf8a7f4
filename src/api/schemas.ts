/**
 * Request and response schemas shared by the CSS and ESS routes. Bodies are validated without type
 * coercion (a wrong type is a 400 naming its path, never stored), and the same schemas are the
 * OpenAPI document, so the document is exactly as strict as the server.
 *
 * Open Horizon's Go client sends its whole `MetaData` struct: every string field (possibly ""),
 * `null` for empty lists and policies, fields we do not use. So known fields are typed exactly,
 * unknown ones are ignored, and `null` stands for "not set" where Go sends it.
 */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,127}$'
const BASE64_PATTERN = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$'
const RFC3339_OR_EMPTY = '^$|^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$'

/** A name, or "" (Open Horizon's clients send "" for an unset string). */
const nameOrEmpty = { type: 'string', anyOf: [{ maxLength: 0 }, { pattern: NAME_PATTERN }] }
const text = (max: number): Record<string, unknown> => ({ type: 'string', maxLength: max })
const count = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }

export const objectMetaSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    objectID: nameOrEmpty,
    objectType: nameOrEmpty,
    destinationOrgID: nameOrEmpty,
    destinationID: nameOrEmpty,
    destinationType: nameOrEmpty,
    destinationsList: {
      type: ['array', 'null'],
      maxItems: 100_000,
      items: {
        type: 'string',
        pattern: '^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}:[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$'
      }
    },
    destinationSelector: { type: ['object', 'null'], maxProperties: 64, additionalProperties: text(256) },
    destinationPolicy: { type: ['object', 'null'] },
    expiration: { type: 'string', pattern: RFC3339_OR_EMPTY },
    activationTime: { type: 'string', pattern: RFC3339_OR_EMPTY },
    version: text(128),
    description: text(4096),
    link: text(2048),
    contentType: text(256),
    hashAlgorithm: text(32),
    publicKey: text(4096),
    signature: text(4096),
    inactive: { type: 'boolean' },
    noData: { type: 'boolean' },
    metaOnly: { type: 'boolean' },
    autodelete: { type: 'boolean' },
    public: { type: 'boolean' },
    /** Open Horizon: at least one consumer; 0 means 1. */
    consumers: { type: 'integer', minimum: 0, maximum: 1_000_000 },
    instanceID: count,
    dataID: count,
    objectSize: count,
    chunkSize: count
  }
} as const

/** `{ meta, data? }`: data is the whole object data, base64 (null: none, as Go sends a nil slice). */
export const objectPutBody = {
  type: 'object',
  required: ['meta'],
  additionalProperties: false,
  properties: {
    meta: objectMetaSchema,
    data: { type: ['string', 'null'], pattern: BASE64_PATTERN, contentEncoding: 'base64' }
  }
} as const

/** RFC 9457 problem details, as every error answers. */
export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  additionalProperties: true,
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', pattern: '^SYNC_ERR_[A-Z_]+$' },
    errors: {}
  }
} as const
