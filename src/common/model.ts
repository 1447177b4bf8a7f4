/**
 * Domain types. JSON names follow Open Horizon's sync service (objectID, destinationType, ...) so
 * its clients work unchanged; our additions (dataHash, destinationSelector, created, ...) are extra
 * fields that such clients ignore.
 */

export interface ObjectKey {
  orgId: string
  objectType: string
  objectId: string
}

export interface DestinationKey {
  orgId: string
  destinationType: string
  destinationId: string
}

/** Object metadata as apps send and receive it (Open Horizon `MetaData` plus our additions). */
export interface ObjectMetadata {
  objectID: string
  objectType: string
  destinationOrgID: string
  destinationID?: string
  destinationType?: string
  /** `"type:id"` entries. */
  destinationsList?: string[]
  /** Match on node properties, e.g. `{ site: 'A' }` (our addition). */
  destinationSelector?: Record<string, string>
  destinationPolicy?: unknown
  expiration?: string
  version?: string
  description?: string
  link?: string
  inactive?: boolean
  activationTime?: string
  noData?: boolean
  metaOnly?: boolean
  consumers?: number
  autodelete?: boolean
  public?: boolean
  ownerID?: string
  originID?: string
  originType?: string
  /** Edge-to-cloud objects: the instance number the originating edge gave it (edgesync). */
  originInstanceID?: number
  deleted?: boolean
  /** Server-assigned, strictly increasing per object; never a timestamp. */
  instanceID: number
  /** instanceID of the last data change (0 = no data). */
  dataID: number
  objectSize: number
  hashAlgorithm?: string
  publicKey?: string
  signature?: string
  /** sha256 of the data, hex (our addition). */
  dataHash?: string
  contentType?: string
  created?: string
  lastUpdate?: string
  /** The request id of the REST call that wrote this instance: follows it into edges' logs and acks. */
  traceId?: string
}

/** Object status on the side that holds the object (Open Horizon strings). */
export const ObjectStatus = {
  NOT_READY: 'notReady',
  READY: 'ready',
  PARTIALLY_RECEIVED: 'partiallyreceived',
  COMPLETELY_RECEIVED: 'completelyReceived',
  RECEIVED: 'objreceived',
  CONSUMED: 'objconsumed',
  DELETED: 'objdeleted',
  /** Edge to cloud: the cloud's apps consumed this edge object (Open Horizon's ESS status). */
  CONSUMED_BY_DEST: 'consumedByDest'
} as const
export type ObjectStatus = (typeof ObjectStatus)[keyof typeof ObjectStatus]

/** Per-destination delivery status (Open Horizon strings). */
export const DeliveryStatus = {
  PENDING: 'pending',
  DELIVERING: 'delivering',
  DELIVERED: 'delivered',
  CONSUMED: 'consumed',
  DELETED: 'deleted',
  ERROR: 'error'
} as const
export type DeliveryStatus = (typeof DeliveryStatus)[keyof typeof DeliveryStatus]

const DELIVERY_RANK: Readonly<Record<DeliveryStatus, number>> = {
  pending: 0,
  delivering: 1,
  error: 2,
  delivered: 3,
  consumed: 4,
  deleted: 5
}

/**
 * The one rule that keeps duplicates and reordering from moving a delivery backwards: a newer
 * instance always wins; within one instance the status only moves forward (an error may be
 * replaced by a later success, and a retry may clear an error back to delivering).
 */
export function deliveryMovesForward (
  current: { instanceId: number; status: DeliveryStatus; bytes?: number } | undefined,
  next: { instanceId: number; status: DeliveryStatus; bytes?: number }
): boolean {
  if (current === undefined || next.instanceId > current.instanceId) return true
  if (next.instanceId < current.instanceId) return false
  if (current.status === 'error' && next.status !== 'pending') return true
  // An edge may refuse an instance after it arrived (a plugin rejects or rolls it back).
  if (next.status === 'error') {
    return current.status === 'pending' || current.status === 'delivering' || current.status === 'delivered'
  }
  // Transfer progress moves a delivering record forward by its byte count alone.
  if (next.status === 'delivering' && current.status === 'delivering') {
    return (next.bytes ?? 0) > (current.bytes ?? 0)
  }
  return DELIVERY_RANK[next.status] >= DELIVERY_RANK[current.status] && next.status !== current.status
}

export interface StoredObject {
  key: ObjectKey
  meta: ObjectMetadata
  status: ObjectStatus
  /** Where the data lives in the blob store; absent when there is no data. */
  dataRef?: string
  /**
   * An object with a destination policy whose policy the policy engine (Open Horizon's agbot) has
   * taken in (`PUT .../policyreceived`); a new instance starts without it.
   */
  policyReceived?: true
}

export interface DeliveryRecord {
  orgId: string
  objectType: string
  objectId: string
  destinationType: string
  destinationId: string
  instanceId: number
  status: DeliveryStatus
  /** Finer state than `status`, e.g. `queued`, `sent`, `receiving 40%`, `rejected: bad hash`. */
  detail?: string
  message?: string
  /** During a chunked transfer: bytes the destination holds durably (progress). */
  bytes?: number
  /** When each status was first reached in this instance, ISO 8601. */
  times: Partial<Record<DeliveryStatus, string>>
  updatedAt: string
}

export type DeliveryUpdate = Omit<DeliveryRecord, 'times' | 'updatedAt'> & { at?: string }

export interface NodeRecord {
  orgId: string
  destinationType: string
  destinationId: string
  properties: Record<string, string>
  protocol: 'mqtt' | 'http'
  codeVersion?: string
  online: boolean
  registeredAt: string
  lastHeartbeat?: string
  /** What the node's plugins reported in its last heartbeat (e.g. the EMS runtime). */
  status?: Record<string, Record<string, unknown>>
}

export const Role = {
  SYNC_ADMIN: 'syncAdmin',
  ORG_ADMIN: 'orgAdmin',
  USER: 'user',
  NODE: 'node'
} as const
export type Role = (typeof Role)[keyof typeof Role]

export interface UserRecord {
  appKey: string
  orgId: string
  role: Role
  /** scrypt hash `scrypt$N$r$p$salt$hash` (never the secret). */
  secretHash: string
  disabled: boolean
  created: string
}

export type AclKind = 'objects' | 'destinations'
export interface AclEntry {
  orgId: string
  kind: AclKind
  /** Object or destination type; `''` is the all-types ACL. */
  key: string
  /** App key, or `*` for every user of the org. */
  username: string
  userType: 'user' | 'node'
  role: 'aclReader' | 'aclWriter' | 'na'
}

export interface WebhookRecord {
  orgId: string
  objectType: string
  /** http(s) URL called with the object's metadata when an object of the type arrives or is deleted. */
  url: string
  created: string
}

export interface AuditEntry {
  at: string
  orgId: string
  actor: string
  action: string
  target: string
  detail?: Record<string, unknown>
}

export interface Page<T> {
  items: T[]
  /** Opaque cursor for the next page; absent on the last page. */
  next?: string
}

/** Names used in topics and paths: no slashes, wildcards or control characters. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,127}$'
const NAME_RE = new RegExp(NAME_PATTERN)
export function isValidName (s: unknown): s is string {
  return typeof s === 'string' && NAME_RE.test(s)
}
