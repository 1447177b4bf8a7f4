/** The composition of a CSS: the generic service with the extensions this product ships (EMS). */
import type { SyncConfig } from '../common/config/schema.js'
import type { Logger } from '../common/log.js'
import { startCloudSyncService, type CssHandle } from '../css/cloud-sync-service.js'
import { emsCloudExtension } from '../ems/cloud/extension.js'

export type { CssHandle } from '../css/cloud-sync-service.js'

export async function startCss (cfg: Readonly<SyncConfig>, log: Logger): Promise<CssHandle> {
  return await startCloudSyncService(cfg, log, { extensions: [emsCloudExtension()] })
}
