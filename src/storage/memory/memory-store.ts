/** The reference backend: everything in process memory, lost on exit. */
import { LeaseTable, SettingTable, type LeaseTableData, type SettingTableData } from './lease-table.js'
import { Readable } from 'node:stream'
import type { AuditEntry } from '../../common/model.js'
import { checkRange, HashingCounter, newBlobRef } from '../common.js'
import type { AuditLog, BlobInfo, BlobStore, ByteRange, Store, StoreOptions } from '../types.js'
import { DeliveryTable, type DeliveryTableData } from './delivery-table.js'
import { NodeTable, type NodeTableData } from './node-table.js'
import { emptyObjectTable, ObjectTable } from './object-table.js'
import { UserTable, type UserTableData } from './user-table.js'
import { WebhookTable, type WebhookTableData } from './webhook-table.js'

export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<string, Buffer[]>()

  async write (
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { maxSize?: number } = {}
  ): Promise<BlobInfo> {
    const counter = new HashingCounter(opts.maxSize)
    const parts: Buffer[] = []
    for await (const chunk of source) {
      counter.add(chunk)
      parts.push(Buffer.from(chunk))
    }
    const ref = newBlobRef()
    this.#blobs.set(ref, parts)
    return { ref, size: counter.size, sha256: counter.digest() }
  }

  async read (ref: string, range?: ByteRange): Promise<Readable | undefined> {
    const parts = this.#blobs.get(ref)
    if (parts === undefined) return undefined
    const size = parts.reduce((n, p) => n + p.length, 0)
    if (size === 0 && range === undefined) return Readable.from([])
    const { start, end } = checkRange(range, size)
    return Readable.from(
      (function * () {
        let offset = 0
        for (const p of parts) {
          const s = Math.max(start - offset, 0)
          const e = Math.min(end + 1 - offset, p.length)
          if (s < e) yield p.subarray(s, e)
          offset += p.length
        }
      })()
    )
  }

  async size (ref: string): Promise<number | undefined> {
    return this.#blobs.get(ref)?.reduce((n, p) => n + p.length, 0)
  }

  async remove (ref: string): Promise<void> {
    this.#blobs.delete(ref)
  }
}

export class MemoryAuditLog implements AuditLog {
  readonly #entries: AuditEntry[] = []
  async append (entry: AuditEntry): Promise<void> {
    this.#entries.push(structuredClone(entry))
  }

  async list (q: { orgId?: string; since?: string; limit?: number }): Promise<AuditEntry[]> {
    return this.#entries
      .filter(
        (e) => (q.orgId === undefined || e.orgId === q.orgId) && (q.since === undefined || e.at >= q.since)
      )
      .slice(0, q.limit ?? 1000)
      .map((e) => structuredClone(e))
  }
}

export function createMemoryStore (opts: StoreOptions): Store {
  const objects = emptyObjectTable()
  const deliveries: DeliveryTableData = {}
  const nodes: NodeTableData = {}
  const users: UserTableData = { users: {}, acls: {} }
  const webhooks: WebhookTableData = {}
  const leases: LeaseTableData = {}
  const settings: SettingTableData = {}
  const noCommit = async (): Promise<void> => {}
  const blobs = new MemoryBlobStore()
  return {
    kind: 'memory',
    objects: new ObjectTable(
      () => objects,
      noCommit,
      opts,
      async (refs) => {
        for (const r of refs) await blobs.remove(r)
      }
    ),
    blobs,
    deliveries: new DeliveryTable(() => deliveries, noCommit),
    nodes: new NodeTable(() => nodes, noCommit),
    users: new UserTable(() => users, noCommit),
    audit: new MemoryAuditLog(),
    webhooks: new WebhookTable(() => webhooks, noCommit),
    leases: new LeaseTable(() => leases),
    settings: new SettingTable(() => settings, noCommit),
    ping: async () => {},
    close: async () => {}
  }
}
