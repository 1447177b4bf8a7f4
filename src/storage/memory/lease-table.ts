import type { Lease, LeaseStore, SettingStore } from '../types.js'

export type LeaseTableData = Record<string, Lease>
export type SettingTableData = Record<string, string>

/**
 * Leases in one process (memory and local stores: one CSS owns such a store, so it always wins
 * its lease; the table keeps the contract so the leader code runs the same on every backend).
 */
export class LeaseTable implements LeaseStore {
  readonly #data: () => LeaseTableData
  constructor (data: () => LeaseTableData) {
    this.#data = data
  }

  async current (name: string): Promise<Lease | undefined> {
    const l = this.#data()[name]
    return l === undefined ? undefined : { ...l }
  }

  async claim (lease: Lease): Promise<boolean> {
    const cur = this.#data()[lease.name]
    if ((cur?.version ?? 0) >= lease.version) return false
    this.#data()[lease.name] = { ...lease }
    return true
  }

  async renew (lease: Lease): Promise<boolean> {
    const cur = this.#data()[lease.name]
    if (cur?.version !== lease.version || cur.holder !== lease.holder) return false
    cur.expiresAt = lease.expiresAt
    return true
  }
}

export class SettingTable implements SettingStore {
  readonly #data: () => SettingTableData
  readonly #commit: () => Promise<void>
  constructor (data: () => SettingTableData, commit: () => Promise<void>) {
    this.#data = data
    this.#commit = commit
  }

  async get (name: string): Promise<string | undefined> {
    return this.#data()[name]
  }

  async putIfAbsent (name: string, value: string): Promise<string> {
    const cur = this.#data()[name]
    if (cur !== undefined) return cur
    this.#data()[name] = value
    await this.#commit()
    return value
  }

  async set (name: string, value: string): Promise<void> {
    this.#data()[name] = value
    await this.#commit()
  }

  async list (prefix: string): Promise<Array<[string, string]>> {
    return Object.entries(this.#data())
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : 1))
  }

  async remove (name: string): Promise<void> {
    if (this.#data()[name] === undefined) return
    Reflect.deleteProperty(this.#data(), name)
    await this.#commit()
  }
}

/** Settings kept in this process only (for what needs no sharing on a one-instance store). */
export function memorySettings (): SettingTable {
  const data: SettingTableData = {}
  return new SettingTable(
    () => data,
    async () => {}
  )
}

/**
 * The settings other CSS instances can see: the store's on a shared (mongo) store; none on a
 * memory or local one, which only one CSS uses (so nothing is written there for them).
 */
export function sharedSettings (store: { kind: string; settings: SettingStore }): SettingStore | undefined {
  return store.kind === 'mongo' ? store.settings : undefined
}
