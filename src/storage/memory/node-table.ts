import type { DestinationKey, NodeRecord, Page } from '../../common/model.js'
import { decodeCursor, encodeCursor, joinKey, nodeId, pageLimit } from '../common.js'
import type { NodeQuery, NodeStore, NodeTouch } from '../types.js'

export type NodeTableData = Record<string, NodeRecord>

const sortKey = (n: NodeRecord): string => joinKey(n.destinationType, n.destinationId)

function nodeMatches (n: NodeRecord, q: NodeQuery): boolean {
  if (n.orgId !== q.orgId) return false
  if (q.destinationType !== undefined && n.destinationType !== q.destinationType) return false
  for (const [k, v] of Object.entries(q.properties ?? {})) {
    if (n.properties[k] !== v) return false
  }
  return true
}

export class NodeTable implements NodeStore {
  readonly #data: () => NodeTableData
  readonly #commit: (ids: string[]) => Promise<void>
  /** `commit` makes the named records durable (the local store journals just those). */
  constructor (data: () => NodeTableData, commit: (ids: string[]) => Promise<void>) {
    this.#data = data
    this.#commit = commit
  }

  async upsert (node: NodeRecord): Promise<void> {
    const id = nodeId(node)
    this.#data()[id] = structuredClone(node)
    await this.#commit([id])
  }

  async touchMany (updates: readonly NodeTouch[]): Promise<void> {
    const data = this.#data()
    const changed: string[] = []
    for (const u of updates) {
      const id = nodeId(u.node)
      const n = data[id]
      if (n === undefined) continue
      n.lastHeartbeat = u.at
      n.online = u.online
      if (u.status !== undefined) n.status = structuredClone(u.status)
      changed.push(id)
    }
    if (changed.length > 0) await this.#commit(changed)
  }

  async get (key: DestinationKey): Promise<NodeRecord | undefined> {
    const n = this.#data()[nodeId(key)]
    return n === undefined ? undefined : structuredClone(n)
  }

  async list (q: NodeQuery): Promise<Page<NodeRecord>> {
    const after = decodeCursor(q.cursor)
    const limit = pageLimit(q.limit)
    const sorted = Object.values(this.#data())
      .filter((n) => nodeMatches(n, q) && (after === undefined || sortKey(n) > after))
      .sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1))
    const items = sorted.slice(0, limit).map((n) => structuredClone(n))
    const last = items.at(-1)
    return sorted.length > limit && last !== undefined
      ? { items, next: encodeCursor(sortKey(last)) }
      : { items }
  }

  async remove (key: DestinationKey): Promise<boolean> {
    const data = this.#data()
    const id = nodeId(key)
    if (data[id] === undefined) return false

    delete data[id]
    await this.#commit([id])
    return true
  }
}
