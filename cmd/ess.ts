#!/usr/bin/env node
// sync-ess: load config, start the Edge Sync Service, stop cleanly on SIGINT/SIGTERM.
import module from 'node:module'

// V8's code cache for our modules and dependencies (in os.tmpdir(), or NODE_COMPILE_CACHE): a
// restart skips most compiling (issue #22: start-to-ready). Enabled before anything else loads.
// (Node 22.1 and later; on an older Node the service starts without it.)
if (typeof module.enableCompileCache === 'function') module.enableCompileCache()
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
