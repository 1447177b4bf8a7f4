/**
 * One error type with stable codes. The class records who is to blame; the code drives handling
 * (HTTP status, MQTT rejection, retry). The README's error table is kept in step by a test.
 */
export const SyncErrorCode = {
  CONFIG_INVALID: 'SYNC_ERR_CONFIG_INVALID',
  VALIDATION: 'SYNC_ERR_VALIDATION',
  BAD_JSON: 'SYNC_ERR_BAD_JSON',
  BODY_TOO_LARGE: 'SYNC_ERR_BODY_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'SYNC_ERR_UNSUPPORTED_MEDIA_TYPE',
  NOT_FOUND: 'SYNC_ERR_NOT_FOUND',
  CONFLICT: 'SYNC_ERR_CONFLICT',
  PRECONDITION_FAILED: 'SYNC_ERR_PRECONDITION_FAILED',
  RANGE_NOT_SATISFIABLE: 'SYNC_ERR_RANGE_NOT_SATISFIABLE',
  UNAUTHENTICATED: 'SYNC_ERR_UNAUTHENTICATED',
  FORBIDDEN: 'SYNC_ERR_FORBIDDEN',
  RATE_LIMITED: 'SYNC_ERR_RATE_LIMITED',
  PROTOCOL: 'SYNC_ERR_PROTOCOL',
  STORAGE: 'SYNC_ERR_STORAGE',
  DEVICE: 'SYNC_ERR_DEVICE',
  TRANSPORT: 'SYNC_ERR_TRANSPORT',
  UNAVAILABLE: 'SYNC_ERR_UNAVAILABLE',
  INTERNAL: 'SYNC_ERR_INTERNAL'
} as const
export type SyncErrorCode = (typeof SyncErrorCode)[keyof typeof SyncErrorCode]

/** Human text for each code, shown in the README table and in problem+json `title`. */
export const ERROR_TITLES: Readonly<Record<SyncErrorCode, string>> = {
  SYNC_ERR_CONFIG_INVALID: 'Configuration is invalid',
  SYNC_ERR_VALIDATION: 'Request or message failed validation',
  SYNC_ERR_BAD_JSON: 'Body is not valid JSON',
  SYNC_ERR_BODY_TOO_LARGE: 'Body is larger than the configured limit',
  SYNC_ERR_UNSUPPORTED_MEDIA_TYPE: 'Content type is not supported here',
  SYNC_ERR_NOT_FOUND: 'No such object, node, user or route',
  SYNC_ERR_CONFLICT: 'The change conflicts with the current state',
  SYNC_ERR_PRECONDITION_FAILED: 'If-Match did not match the current version',
  SYNC_ERR_RANGE_NOT_SATISFIABLE: 'Requested byte range is outside the data',
  SYNC_ERR_UNAUTHENTICATED: 'Missing or wrong credentials',
  SYNC_ERR_FORBIDDEN: 'Authenticated identity may not do this',
  SYNC_ERR_RATE_LIMITED: 'Too many requests or failed logins; retry after the Retry-After delay',
  SYNC_ERR_PROTOCOL: 'Malformed or unexpected message from a peer',
  SYNC_ERR_STORAGE: 'The store failed',
  SYNC_ERR_DEVICE: 'A field device did not answer or refused a request',
  SYNC_ERR_TRANSPORT: 'The broker or network failed',
  SYNC_ERR_UNAVAILABLE: 'Service is starting or stopping',
  SYNC_ERR_INTERNAL: 'Unexpected internal error'
}

export class SyncError extends Error {
  readonly code: SyncErrorCode
  /** Extra, non-secret facts for the caller (e.g. the list of invalid config keys). */
  readonly details?: unknown

  constructor (code: SyncErrorCode, message: string, options?: ErrorOptions & { details?: unknown }) {
    super(message, options)
    this.code = code
    if (options?.details !== undefined) this.details = options.details
  }

  override get name (): string {
    return this.constructor.name
  }
}

// The caller's or operator's fault.
export class ConfigError extends SyncError {}
export class ValidationError extends SyncError {
  constructor (message: string, options?: ErrorOptions & { details?: unknown }) {
    super(SyncErrorCode.VALIDATION, message, options)
  }
}
export class NotFoundError extends SyncError {
  constructor (message: string, options?: ErrorOptions) {
    super(SyncErrorCode.NOT_FOUND, message, options)
  }
}
// The peer's fault: a malformed or forged message from the other side.
export class ProtocolError extends SyncError {
  constructor (message: string, options?: ErrorOptions) {
    super(SyncErrorCode.PROTOCOL, message, options)
  }
}
// Our own or a dependency's fault.
export class StorageError extends SyncError {
  constructor (message: string, options?: ErrorOptions) {
    super(SyncErrorCode.STORAGE, message, options)
  }
}
/** A field device (Modbus) failed, timed out or answered with an exception. */
export class DeviceError extends SyncError {
  constructor (message: string, options?: ErrorOptions) {
    super(SyncErrorCode.DEVICE, message, options)
  }
}
export class TransportError extends SyncError {
  constructor (message: string, options?: ErrorOptions) {
    super(SyncErrorCode.TRANSPORT, message, options)
  }
}

export function isSyncError (err: unknown): err is SyncError {
  return err instanceof SyncError
}
