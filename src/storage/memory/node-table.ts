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
  readonly #commit: () => Promise<void>
  constructor (data: () => NodeTableData, commit: () => Promise<void>) {
    this.#data = data
    this.#commit = commit
  }

  async upsert (node: NodeRecord): Promise<void> {
    this.#data()[nodeId(node)] = structuredClone(node)
    await this.#commit()
  }

  async touchMany (updates: readonly NodeTouch[]): Promise<void> {
    const data = this.#data()
    let changed = false
    for (const u of updates) {
      const n = data[nodeId(u.node)]
      if (n === undefined) continue
      n.lastHeartbeat = u.at
      n.online = u.online
      if (u.status !== undefined) n.status = structuredClone(u.status)
      changed = true
    }
    if (changed) await this.#commit()
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
      .sort((a, b) => sortKey(a) < sortKey(b) ? -1 : 1)
    const items = sorted.slice(0, limit).map((n) => structuredClone(n))
    const last = items.at(-1)
    return sorted.length > limit && last !== undefined ? { items, next: encodeCursor(sortKey(last)) } : { items }
  }

  async remove (key: DestinationKey): Promise<boolean> {
    const data = this.#data()
    const id = nodeId(key)
    if (data[id] === undefined) return false

    delete data[id]
    await this.#commit()
    return true
  }
}
