/** The mongo backend (CSS at scale). The only `mongodb` import folder. */
import { MongoClient } from 'mongodb'
import { StorageError } from '../../common/errors.js'
import { guardStoreMethods } from '../guard.js'
import type { Store, StoreOptions } from '../types.js'
import { MongoBlobStore } from './mongo-blob-store.js'
import { MongoLeaseStore, MongoSettingStore } from './mongo-leases.js'
import { MongoObjectStore } from './mongo-objects.js'
import {
  MongoAuditLog,
  MongoDeliveryStore,
  MongoNodeStore,
  MongoUserStore,
  MongoWebhookStore
} from './mongo-tables.js'

export interface MongoStoreOptions extends StoreOptions {
  uri: string
  dbName: string
  serverSelectionTimeoutMS?: number
}

export async function openMongoStore (opts: MongoStoreOptions): Promise<Store> {
  const client = new MongoClient(opts.uri, {
    serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 10_000
  })
  try {
    await client.connect()
    const db = client.db(opts.dbName)
    const blobs = new MongoBlobStore(db)
    const objects = new MongoObjectStore(db, opts, async (refs) => {
      for (const r of refs) await blobs.remove(r)
    })
    // FerretDB says so in buildInfo; it serves `_id` lookups from an index, `$in` by a scan.
    const info = await db.admin().command({ buildInfo: 1 }).catch(() => ({}))
    const deliveries = new MongoDeliveryStore(db, 'ferretdbVersion' in info)
    const nodes = new MongoNodeStore(db)
    const users = new MongoUserStore(db)
    const audit = new MongoAuditLog(db)
    const webhooks = new MongoWebhookStore(db)
    const leases = new MongoLeaseStore(db)
    const settings = new MongoSettingStore(db)
    await Promise.all([
      leases.init(),
      blobs.init(),
      objects.init(),
      deliveries.init(),
      nodes.init(),
      users.init(),
      audit.init(),
      webhooks.init()
    ])
    let closed = false
    // Driver errors of reads are storage errors too (the tables wrap only their writes).
    const g = guardStoreMethods
    return {
      kind: 'mongo',
      objects: g(objects, 'objects'),
      blobs: g(blobs, 'blobs'),
      deliveries: g(deliveries, 'deliveries'),
      nodes: g(nodes, 'nodes'),
      users: g(users, 'users'),
      audit: g(audit, 'audit'),
      webhooks: g(webhooks, 'webhooks'),
      leases: g(leases, 'leases'),
      settings: g(settings, 'settings'),
      ping: async () => {
        await db.command({ ping: 1 }, { timeoutMS: 2000 }).catch((err: unknown) => {
          throw new StorageError('The database does not answer', { cause: err })
        })
      },
      close: async () => {
        if (closed) return
        closed = true
        await client.close()
      }
    }
  } catch (err) {
    await client.close().catch(() => {})
    throw new StorageError('Cannot open the mongo store', { cause: err })
  }
}
