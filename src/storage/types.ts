/**
 * The storage contract, as narrow interfaces per concern. `test/conformance/store-suite.ts` states
 * it as tests and runs it against every backend; the memory backend is the reference.
 */
import type { Logger } from '../common/log.js'
import type { Readable } from 'node:stream'
import type {
  AclEntry,
  AclKind,
  AuditEntry,
  DeliveryRecord,
  DeliveryUpdate,
  DestinationKey,
  NodeRecord,
  ObjectKey,
  ObjectMetadata,
  ObjectStatus,
  Page,
  StoredObject,
  UserRecord,
  WebhookRecord
} from '../common/model.js'

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive (HTTP Range semantics). */
  end: number
}

export interface BlobInfo {
  ref: string
  size: number
  /** sha256, hex. */
  sha256: string
}

/** Object data, written once and read in ranges. Never held whole in memory by file/mongo backends. */
export interface BlobStore {
  /** Streams `source` into a new blob; resolves once it is durable. */
  write: (
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts?: { maxSize?: number }
  ) => Promise<BlobInfo>
  /** Streams a blob or a byte range of it; `undefined` when the blob does not exist. */
  read: (ref: string, range?: ByteRange) => Promise<Readable | undefined>
  size: (ref: string) => Promise<number | undefined>
  /**
   * Reads `target.length` bytes at `offset` straight into `target`; the bytes read (fewer only at
   * the end), or undefined when the blob does not exist. Optional: a store that has it serves
   * chunks without a stream per chunk (#22); callers fall back to `read`.
   */
  readInto?: (ref: string, offset: number, target: Buffer) => Promise<number | undefined>
  /** Idempotent. */
  remove: (ref: string) => Promise<void>
  /**
   * Takes ownership of a complete, fsynced file whose size and sha256 the caller verified, by
   * renaming it into the store (no copy). Optional; undefined when the store cannot (another
   * filesystem, a database backend): the caller then streams the file through `write`.
   */
  adopt?: (file: string, info: { size: number; sha256: string }) => Promise<BlobInfo | undefined>
}

/** What a writer supplies for a new instance; the store assigns instanceID and timestamps. */
export type ObjectDraft = Omit<ObjectMetadata, 'instanceID' | 'created' | 'lastUpdate'> & { created?: string }

export interface PutObjectOptions {
  /**
   * Optimistic concurrency: fail with PRECONDITION_FAILED unless the current instance is this one
   * (0 = must not exist).
   */
  expectInstanceId?: number
  /**
   * Keep this instanceID instead of assigning one (a replica such as the ESS stores the CSS's).
   * Must exceed the current one, else CONFLICT.
   */
  instanceId?: number
}

export interface ObjectQuery {
  orgId: string
  objectType?: string
  /** Only objects whose status is one of these. */
  statuses?: readonly ObjectStatus[]
  /** Only objects changed at or after this time (ISO). */
  since?: string
  destinationType?: string
  destinationId?: string
  deleted?: boolean
  limit?: number
  cursor?: string
}

export interface ObjectStore {
  /**
   * Writes a new instance of an object. `build` receives the current instance (or undefined) and
   * returns the next one; it may be called again if a concurrent writer got in first. The stored
   * instanceID strictly increases per object, also across delete and re-create, and no two
   * writes ever get the same one. Older instances go to history (see `retention`).
   */
  put: (
    key: ObjectKey,
    build: (current: StoredObject | undefined) => ObjectDraftWithState,
    opts?: PutObjectOptions
  ) => Promise<StoredObject>
  /** Changes only the status of the current instance (no new instance); undefined if absent. */
  setStatus: (
    key: ObjectKey,
    status: ObjectStatus,
    expectInstanceId?: number
  ) => Promise<StoredObject | undefined>
  /** Marks the current instance's destination policy as taken in (no new instance); undefined if absent. */
  markPolicyReceived: (key: ObjectKey) => Promise<StoredObject | undefined>
  get: (key: ObjectKey) => Promise<StoredObject | undefined>
  /** The current or an earlier retained instance. */
  getInstance: (key: ObjectKey, instanceId: number) => Promise<StoredObject | undefined>
  /** Retained instances, newest first (the current one included). */
  history: (key: ObjectKey) => Promise<StoredObject[]>
  /** Sorted by (objectType, objectID). */
  list: (query: ObjectQuery) => Promise<Page<StoredObject>>
  /** Every org that has at least one object (for service-wide scans such as expiration timers). */
  orgs: () => Promise<string[]>
  /** Removes the object and its history; returns the blob refs no longer referenced. */
  remove: (key: ObjectKey) => Promise<string[]>
}

export interface ObjectDraftWithState {
  meta: ObjectDraft
  status: ObjectStatus
  dataRef?: string
}

export interface DeliveryStore {
  /**
   * Applies many updates in one batch. An update only lands if it moves the record forward
   * (`deliveryMovesForward`): a stale or duplicate update is ignored, never an error.
   */
  upsertMany: (updates: readonly DeliveryUpdate[]) => Promise<void>
  get: (obj: ObjectKey, dest: DestinationKey) => Promise<DeliveryRecord | undefined>
  listByObject: (obj: ObjectKey, page?: { limit?: number; cursor?: string }) => Promise<Page<DeliveryRecord>>
  listByDestination: (
    dest: DestinationKey,
    page?: { limit?: number; cursor?: string }
  ) => Promise<Page<DeliveryRecord>>
  removeByObject: (obj: ObjectKey) => Promise<void>
  removeByDestination: (dest: DestinationKey) => Promise<void>
}

export interface NodeTouch {
  node: DestinationKey
  at: string
  online: boolean
  status?: NodeRecord['status']
}

export interface NodeQuery {
  orgId: string
  destinationType?: string
  /** Every property must match. */
  properties?: Record<string, string>
  limit?: number
  cursor?: string
}

export interface NodeStore {
  /** Inserts or replaces a node (keyed by org/type/id). */
  upsert: (node: NodeRecord) => Promise<void>
  /**
   * Sets lastHeartbeat/online (and the reported status, when given) for many nodes in one batch;
   * unknown nodes are skipped.
   */
  touchMany: (updates: readonly NodeTouch[]) => Promise<void>
  get: (key: DestinationKey) => Promise<NodeRecord | undefined>
  /** Sorted by (destinationType, destinationId). */
  list: (query: NodeQuery) => Promise<Page<NodeRecord>>
  remove: (key: DestinationKey) => Promise<boolean>
}

export interface UserStore {
  put: (user: UserRecord) => Promise<void>
  get: (appKey: string) => Promise<UserRecord | undefined>
  list: (orgId?: string) => Promise<UserRecord[]>
  remove: (appKey: string) => Promise<boolean>
  /** Adds entries; an entry for the same (org, kind, key, username, userType) is replaced. */
  putAcl: (entries: readonly AclEntry[]) => Promise<void>
  removeAcl: (
    orgId: string,
    kind: AclKind,
    key: string,
    userType: AclEntry['userType'],
    username: string
  ) => Promise<boolean>
  listAcl: (orgId: string, kind: AclKind, key?: string) => Promise<AclEntry[]>
}

export interface WebhookStore {
  /** Registers a webhook; registering the same (org, type, url) again is a no-op. */
  put: (hook: WebhookRecord) => Promise<void>
  remove: (orgId: string, objectType: string, url: string) => Promise<boolean>
  list: (orgId: string, objectType: string) => Promise<WebhookRecord[]>
}

export interface AuditLog {
  /** Appends once durable; entries are never changed or removed. */
  append: (entry: AuditEntry) => Promise<void>
  /** Oldest first. */
  list: (query: { orgId?: string; since?: string; limit?: number }) => Promise<AuditEntry[]>
}

/**
 * A leader lease: one version per holder's term. A term is taken by creating the next version
 * (creation is atomic in every backend: a unique key), never by editing another's, so it needs
 * no transactions and no atomic compare-and-set on update (which FerretDB 1.x lacks).
 */
export interface Lease {
  name: string
  /** The fencing token: grows by one per term. */
  version: number
  holder: string
  /** Epoch milliseconds, by the holder's clock. */
  expiresAt: number
}

export interface LeaseStore {
  /** The newest term of `name`, if any. */
  current: (name: string) => Promise<Lease | undefined>
  /** Creates term `lease.version`; true for the one caller that created it, false for all others. */
  claim: (lease: Lease) => Promise<boolean>
  /** Moves the expiry of the holder's own term; false when that term is gone or not the newest. */
  renew: (lease: Lease) => Promise<boolean>
}

/**
 * Small named values every CSS instance must agree on: an org's signing key (first writer wins),
 * resumable upload sessions and their pieces.
 */
export interface SettingStore {
  get: (name: string) => Promise<string | undefined>
  /** Stores `value` unless `name` has one; returns the value in force (this one or the first). */
  putIfAbsent: (name: string, value: string) => Promise<string>
  /** Stores `value`, replacing any (last writer wins). */
  set: (name: string, value: string) => Promise<void>
  /** Every entry whose name starts with `prefix`, by name. */
  list: (prefix: string) => Promise<Array<[string, string]>>
  remove: (name: string) => Promise<void>
}

export interface Store {
  readonly kind: 'memory' | 'local' | 'mongo'
  readonly leases: LeaseStore
  readonly settings: SettingStore
  readonly objects: ObjectStore
  readonly blobs: BlobStore
  readonly deliveries: DeliveryStore
  readonly nodes: NodeStore
  readonly users: UserStore
  readonly audit: AuditLog
  readonly webhooks: WebhookStore
  /** Resolves when the store answers (a round trip to a database server); rejects otherwise. */
  ping: () => Promise<void>
  /** Flushes and releases resources; idempotent. */
  close: () => Promise<void>
}

export interface StoreOptions {
  /** Where repairs made while opening are reported (a torn or corrupt journal). */
  log?: Logger
  /** How many instances per object are kept (current included). */
  historyRetention: number
  /** Object types whose every instance is kept (e.g. EMS layers and configs, for audit and rollback). */
  keepAllHistory?: readonly string[]
}

/** How many instances of objects of `objectType` a store keeps. */
export function retentionFor (opts: StoreOptions, objectType: string): number {
  return opts.keepAllHistory?.includes(objectType) === true ? Number.MAX_SAFE_INTEGER : opts.historyRetention
}
