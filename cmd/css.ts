#!/usr/bin/env node
// sync-css: load config, start the Cloud Sync Service, stop cleanly on SIGINT/SIGTERM.
import './compile-cache.js'
// The rest loads after the cache is on: static imports would be compiled before any module runs.

const { loadConfig, redactedConfig } = await import('../src/common/config/load.js')
const { ConfigError } = await import('../src/common/errors.js')
const { createLogger } = await import('../src/common/log.js')
const { startCss: startCloudSyncService } = await import('../src/app/css.js')

const file = process.argv.includes('-c')
  ? process.argv[process.argv.indexOf('-c') + 1]
  : (process.env.SYNC_CONF ?? 'sync.conf')
try {
  const cfg = await loadConfig({
    file,
    optional: !process.argv.includes('-c'),
    overrides: { NodeType: 'CSS' }
  })
  const log = createLogger({ level: cfg.LogLevel })
  log.info('Starting CSS', { config: redactedConfig(cfg) })
  const css = await startCloudSyncService(cfg, log)
  process.stdout.write(`edgesync CSS ready: REST ${css.restUrl}  MQTT ${css.mqttUrls.join(', ')}\n`)
  const stop = (): void => {
    css.close().then(
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
