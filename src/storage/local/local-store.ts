/**
 * The local backend (ESS always; CSS on one machine): lowdb JSON files, one per table, each write
 * durable before it is acknowledged (deliveries and nodes, written on every ack and heartbeat: a
 * snapshot plus a journal of changes); object data as files; the audit log as append-only JSON lines.
 * The table logic is the memory reference's, so both behave the same by construction.
 */
import { LeaseTable, SettingTable, type LeaseTableData, type SettingTableData } from '../memory/lease-table.js'
import { constants } from 'node:fs'
import { access, mkdir, open, readFile } from 'node:fs/promises'
import path from 'node:path'
import { Low } from 'lowdb'
import { StorageError } from '../../common/errors.js'
import type { AuditEntry } from '../../common/model.js'
import type { AuditLog, Store, StoreOptions } from '../types.js'
import { DeliveryTable, type DeliveryTableData } from '../memory/delivery-table.js'
import { NodeTable, type NodeTableData } from '../memory/node-table.js'
import {
  assertSeqSane,
  emptyObjectTable,
  historyId,
  objectEntries,
  ObjectTable,
  SEQ_ID,
  type ObjectEntry,
  type ObjectTableData
} from '../memory/object-table.js'
import { UserTable, type UserTableData } from '../memory/user-table.js'
import { WebhookTable, type WebhookTableData } from '../memory/webhook-table.js'
import { DurableJsonFile, removeIfExists } from './durable-json-file.js'
import { FileBlobStore } from './file-blob-store.js'
import { JournaledTable } from './journaled-table.js'

class FileAuditLog implements AuditLog {
  readonly #file: string
  #tail: Promise<void> = Promise.resolve()
  constructor (file: string) {
    this.#file = file
  }

  async append (entry: AuditEntry): Promise<void> {
    const line = JSON.stringify(entry) + '\n'
    // Appends are chained so lines never interleave.
    const run = this.#tail.then(async () => {
      const fh = await open(this.#file, 'a', 0o600)
      try {
        await fh.appendFile(line)
        await fh.datasync()
      } finally {
        await fh.close()
      }
    })
    this.#tail = run.catch(() => {})
    try {
      await run
    } catch (err) {
      throw new StorageError('Cannot append to the audit log', { cause: err })
    }
  }

  async list (q: { orgId?: string; since?: string; limit?: number }): Promise<AuditEntry[]> {
    let text = ''
    try {
      text = await readFile(this.#file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StorageError('Cannot read the audit log', { cause: err })
      }
    }
    const out: AuditEntry[] = []
    for (const line of text.split('\n')) {
      if (line === '') continue
      let e: AuditEntry
      // A torn last line (crash mid-append) was never acknowledged: skip it.
      try {
        e = JSON.parse(line) as AuditEntry
      } catch {
        continue
      }
      if ((q.orgId === undefined || e.orgId === q.orgId) && (q.since === undefined || e.at >= q.since)) {
        out.push(e)
      }
      if (out.length >= (q.limit ?? 1000)) break
    }
    return out
  }
}

async function openTable<T> (dir: string, name: string, empty: T): Promise<Low<T>> {
  const db = new Low<T>(new DurableJsonFile<T>(path.join(dir, `${name}.json`)), empty)
  await db.read()
  return db
}

/**
 * Stores written before the object table was journaled kept it whole in `objects.json`: its
 * entries are committed to the journal (durable), then the old file is removed. A crash in between
 * leaves both, and the next open commits the same entries again (harmless).
 */
async function migrateObjects (root: string, into: ObjectTableData, table: JournaledTable<ObjectEntry>): Promise<void> {
  const legacy = path.join(root, 'objects.json')
  const old = await new DurableJsonFile<ObjectTableData>(legacy).read()
  if (old === null) return
  into.seq = Math.max(into.seq, old.seq)
  for (const [id, current] of Object.entries(old.current)) {
    // The journal wins where it has the object already (an earlier migration that crashed before
    // the old file was removed): the old file never holds anything newer.
    if (into.current[id] !== undefined) continue
    into.current[id] = current
    into.history[id] = old.history[id] ?? []
  }
  const history = Object.entries(into.history).flatMap(([id, list]) =>
    list.map((o) => historyId(id, o.meta.instanceID))
  )
  await table.commit([SEQ_ID, ...Object.keys(old.current), ...history])
  await removeIfExists(legacy)
}

export async function openLocalStore (root: string, opts: StoreOptions): Promise<Store> {
  try {
    await mkdir(root, { recursive: true, mode: 0o700 })
    const blobs = new FileBlobStore(path.join(root, 'blobs'))
    await blobs.init()
    // Journaled: a put appends its object's entry instead of rewriting every object (#22).
    const objectData = emptyObjectTable()
    const objects = new JournaledTable<ObjectEntry>(path.join(root, 'object-entries.json'), objectEntries(() => objectData))
    await objects.open()
    await migrateObjects(root, objectData, objects)
    assertSeqSane(objectData)
    // The two tables every ack and heartbeat writes are journaled: a commit costs its change, not the table.
    const deliveries = new JournaledTable<DeliveryTableData[string]>(path.join(root, 'deliveries.json'))
    await deliveries.open()
    const nodes = new JournaledTable<NodeTableData[string]>(path.join(root, 'nodes.json'))
    await nodes.open()
    for (const [name, table] of [
      ['objects', objects],
      ['deliveries', deliveries],
      ['nodes', nodes]
    ] as const) {
      const r = table.recovered
      if (r.corruptLines.length > 0) {
        opts.log?.error('Skipped corrupt journal lines; the journal as found is kept', {
          table: name,
          lines: r.corruptLines.slice(0, 20),
          savedAs: r.savedAs
        })
      }
      if (r.tornBytes > 0) {
        opts.log?.warn('Cut off an unfinished last journal line (a write that never completed)', {
          table: name,
          bytes: r.tornBytes
        })
      }
    }
    const users = await openTable<UserTableData>(root, 'users', { users: {}, acls: {} })
    const webhooks = await openTable<WebhookTableData>(root, 'webhooks', {})
    const settings = await openTable<SettingTableData>(root, 'settings', {})
    // One CSS owns a local store: its lease needs no disk.
    const leases: LeaseTableData = {}
    let closed = false
    const commit = (db: { write: () => Promise<void> }) => async (): Promise<void> => {
      if (closed) throw new StorageError('Store is closed')
      await db.write()
    }
    const journal =
      (t: { commit: (ids: string[]) => Promise<void> }) =>
        async (ids: string[]): Promise<void> => {
          if (closed) throw new StorageError('Store is closed')
          await t.commit(ids)
        }
    return {
      kind: 'local',
      objects: new ObjectTable(
        () => objectData,
        journal(objects),
        opts,
        async (refs) => {
          for (const r of refs) await blobs.remove(r)
        }
      ),
      blobs,
      deliveries: new DeliveryTable(() => deliveries.data, journal(deliveries)),
      nodes: new NodeTable(() => nodes.data, journal(nodes)),
      users: new UserTable(() => users.data, commit(users)),
      audit: new FileAuditLog(path.join(root, 'audit.jsonl')),
      webhooks: new WebhookTable(() => webhooks.data, commit(webhooks)),
      leases: new LeaseTable(() => leases),
      settings: new SettingTable(() => settings.data, commit(settings)),
      // The data folder must still be there and writable (a full disk shows in the writes).
      ping: async () => {
        if (closed) throw new StorageError('Store is closed')
        await access(root, constants.W_OK).catch((err: unknown) => {
          throw new StorageError('The data folder is not writable', { cause: err })
        })
      },
      close: async () => {
        if (closed) return
        closed = true
        // Writes already acknowledged are on disk; this only settles any in flight.
        await Promise.allSettled([
          objects.close(),
          blobs.close(),
          deliveries.close(),
          nodes.close(),
          users.write(),
          webhooks.write(),
          settings.write()
        ])
      }
    }
  } catch (err) {
    if (err instanceof StorageError) throw err
    throw new StorageError(`Cannot open local store at ${root}`, { cause: err })
  }
}
