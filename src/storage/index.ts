/** Storage: narrow interfaces per concern and three backends (memory, local, mongo). */
import type { Logger } from '../common/log.js'
import path from 'node:path'
import type { SyncConfig } from '../common/config/schema.js'
import { openLocalStore } from './local/local-store.js'
import { createMemoryStore } from './memory/memory-store.js'
import type { MongoStoreOptions } from './mongo/mongo-store.js'
import type { Store } from './types.js'

export type {
  AuditLog,
  BlobInfo,
  BlobStore,
  ByteRange,
  Lease,
  LeaseStore,
  SettingStore,
  DeliveryStore,
  NodeQuery,
  NodeStore,
  NodeTouch,
  ObjectDraft,
  ObjectDraftWithState,
  ObjectQuery,
  ObjectStore,
  PutObjectOptions,
  Store,
  StoreOptions,
  UserStore,
  WebhookStore
} from './types.js'
export { readBlob, storeVerifiedFile } from './blob-helpers.js'
export { memorySettings, sharedSettings } from './memory/lease-table.js'
export { createMemoryStore } from './memory/memory-store.js'
export { openLocalStore } from './local/local-store.js'
/**
 * The mongo backend, loaded when first used: the MongoDB driver costs an edge (which stores
 * locally) about 20 MB of memory and its start time for nothing.
 */
export async function openMongoStore (opts: MongoStoreOptions): Promise<Store> {
  const m = await import('./mongo/mongo-store.js')
  return await m.openMongoStore(opts)
}

/** Opens the store the config names; `sub` separates CSS and ESS data under one root. */
export async function openStore (cfg: Readonly<SyncConfig>, sub: string, log?: Logger): Promise<Store> {
  const opts = {
    log,
    historyRetention: cfg.HistoryRetention,
    keepAllHistory: cfg.KeepAllHistoryTypes.split(',')
      .map((x) => x.trim())
      .filter(Boolean)
  }
  switch (cfg.StorageProvider) {
    case 'memory':
      return createMemoryStore(opts)
    case 'local':
      return await openLocalStore(path.join(cfg.PersistenceRootPath, sub, 'store'), opts)
    case 'mongo':
      return await openMongoStore({ ...opts, uri: cfg.MongoUri ?? '', dbName: cfg.MongoDbName })
  }
}
export { timedStore } from './timed.js'
