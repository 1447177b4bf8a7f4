/** The composition of an ESS: the generic service with the plugins this product ships (EMS). */
import type { SyncConfig } from '../common/config/schema.js'
import type { Logger } from '../common/log.js'
import { startEdgeSyncService, type EssHandle } from '../ess/edge-sync-service.js'
import { EmsPlugin } from '../ems/edge/plugin.js'

export type { EssHandle } from '../ess/edge-sync-service.js'

export const PLUGINS = { ems: () => new EmsPlugin() }

export async function startEss (cfg: Readonly<SyncConfig>, log: Logger): Promise<EssHandle> {
  return await startEdgeSyncService(cfg, log, { plugins: PLUGINS })
}
