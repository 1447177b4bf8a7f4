import { SettingTable } from '../../src/storage/memory/lease-table.js'

/** A fresh in-memory settings table (what signing keys are kept in). */
export function memorySettings (): SettingTable {
  const data: Record<string, string> = {}
  return new SettingTable(() => data, async () => {})
}
