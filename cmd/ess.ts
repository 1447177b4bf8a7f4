#!/usr/bin/env node
// sync-ess: load config, start the Edge Sync Service, stop cleanly on SIGINT/SIGTERM.
import './compile-cache.js'
// The rest loads after the cache is on: static imports would be compiled before any module runs.

const { loadConfig, redactedConfig } = await import('../src/common/config/load.js')
const { ConfigError } = await import('../src/common/errors.js')
const { createLogger } = await import('../src/common/log.js')
const { startEss: startEdgeSyncService } = await import('../src/app/ess.js')

const file = process.argv.includes('-c')
  ? process.argv[process.argv.indexOf('-c') + 1]
  : (process.env.SYNC_CONF ?? 'sync.conf')
try {
  const cfg = await loadConfig({
    file,
    optional: !process.argv.includes('-c'),
    overrides: { NodeType: 'ESS' }
  })
  const log = createLogger({ level: cfg.LogLevel })
  log.info('Starting ESS', { config: redactedConfig(cfg) })
  const ess = await startEdgeSyncService(cfg, log)
  process.stdout.write(
    `edgesync ESS ${ess.node.orgId}/${ess.node.destinationType}/${ess.node.destinationId} ready: REST ${ess.restUrl}\n`
  )
  const stop = (): void => {
    ess.close().then(
      () => process.exit(0),
      () => process.exit(1)
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
} catch (err) {
  console.error(err instanceof Error ? `${err.name}: ${err.message}` : String(err))
  process.exit(err instanceof ConfigError ? 2 : 1)
}
