/** The composition of an ESS: the generic service with the plugins this product ships (EMS). */
import type { SyncConfig } from '../common/config/schema.js'
import type { Logger } from '../common/log.js'
import { startEdgeSyncService, type EssHandle } from '../ess/edge-sync-service.js'

export type { EssHandle } from '../ess/edge-sync-service.js'

// Loaded when configured: the EMS plugin brings Modbus (modbus-serial) and its runtime.
export const PLUGINS = { ems: async () => new (await import('../ems/edge/plugin.js')).EmsPlugin() }

export async function startEss (cfg: Readonly<SyncConfig>, log: Logger): Promise<EssHandle> {
  return await startEdgeSyncService(cfg, log, { plugins: PLUGINS })
}
