/**
 * The EMS as a CSS extension: its REST API, the HTTP API for edges without MQTT, the types it
 * owns (layers and configs: written by this service only), and its reactions to edges' verdicts
 * and registrations.
 */
import { sharedSettings } from '../../storage/index.js'
import type { CssExtension } from '../../css/extension.js'
import { registerEmsRoutes } from './operator-routes.js'
import { registerSeedRoutes } from './edge-config-api.js'
import { CONFIG_TYPE, EmsService, LAYER_TYPE } from './config-service.js'
import { EmsCloudMetrics } from './metrics.js'
import { emsRolloutDriver } from './rollout-driver.js'
import type { Alert } from '../../alerts/alerter.js'
import type { Logger } from '../../common/log.js'

export function emsCloudExtension (): CssExtension {
  return {
    name: 'ems',
    ownedTypes: [LAYER_TYPE, CONFIG_TYPE],
    start: async ({ app, store, cfg, auth, log, putObject, metrics, alert, sweep }) => {
      const edgeType = cfg.EmsDestinationType
      const offlineAfterMs = cfg.NodeOfflineAfterSeconds * 1000
      const ems = new EmsService(store, { put: putObject }, { edgeType, offlineAfterMs }, log)
      registerEmsRoutes(app, ems)
      // Only a shared store can have other CSS instances to tell.
      const closeSockets = registerSeedRoutes(app, ems, edgeType, auth, { settings: sharedSettings(store), log })
      const figures = new EmsCloudMetrics(metrics, {
        orgs: async () => await store.objects.orgs(),
        status: async (o) => await ems.status(o)
      })
      const watch = watchFreshness(figures, Number(cfg.AlertFreshnessTarget), alert, sweep, log)
      const drift = cfg.DriftAutoCorrect ? correctDrift(ems, store, sweep, log) : undefined
      return {
        describe: async (orgId, nodes) => await ems.describe(orgId, nodes),
        rolloutDrivers: { ems: emsRolloutDriver(ems, edgeType) },
        outcome: async (node, ack) => {
          if (ack.objectType !== CONFIG_TYPE || node.destinationType !== edgeType) return
          figures.verdict(ack)
          await ems.recordOutcome(node.orgId, node.destinationId, ack.instanceId, ack.state, ack.message)
        },
        registered: async (node) => {
          if (node.destinationType === edgeType) await ems.ensurePublished(node.orgId, node.destinationId)
        },
        close: async () => {
          clearInterval(watch)
          if (drift !== undefined) clearInterval(drift)
          await closeSockets()
        }
      }
    }
  }
}

const FRESHNESS_CHECK_MS = 60_000
const DRIFT_CHECK_MS = 15_000
const DRIFT_RETRY_MS = 10 * 60_000

/** On the lease holder: edges found drifting get their newest config again (audited as css). */
function correctDrift (
  ems: EmsService,
  store: { objects: { orgs: () => Promise<string[]> } },
  sweep: (work: () => Promise<void>) => Promise<boolean>,
  log: Logger
): NodeJS.Timeout {
  // An edge that keeps reporting drift (a broken one, or a hostile one lying about its hash) gets
  // one correction per interval, not a new version every check.
  const last = new Map<string, number>()
  const timer = setInterval(() => {
    sweep(async () => {
      for (const org of await store.objects.orgs()) {
        for (const s of await ems.status(org)) {
          if (s.drift === undefined) continue
          const k = `${org}/${String(s.edge)}`
          if (Date.now() - (last.get(k) ?? 0) < DRIFT_RETRY_MS) continue
          last.set(k, Date.now())
          log.warn('EMS drift: resending the newest config', { org, edge: s.edge, drift: s.drift })
          await ems.correctDrift(org, String(s.edge), 'css')
        }
      }
    }).catch((err: unknown) => {
      log.warn('Drift check failed', { err })
    })
  }, DRIFT_CHECK_MS)
  timer.unref()
  return timer
}

/** Alerts once when the fleet's freshness falls under the target, again only after it recovered. */
function watchFreshness (
  figures: EmsCloudMetrics,
  target: number,
  alert: (a: Alert) => Promise<void>,
  sweep: (work: () => Promise<void>) => Promise<boolean>,
  log: Logger
): NodeJS.Timeout {
  let below = false
  // On the lease holder only: one alert for the fleet, not one per CSS instance.
  const timer = setInterval(() => {
    sweep(async () => {
      const { fresh, stale } = await figures.freshness()
      const ratio = fresh + stale === 0 ? 1 : fresh / (fresh + stale)
      if (ratio >= target) {
        below = false
        return
      }
      if (below) return
      below = true
      await alert({
        kind: 'freshness',
        orgId: '*',
        summary: `EMS config freshness ${(ratio * 100).toFixed(2)}% is under the target ${(target * 100).toFixed(2)}%`,
        detail: { fresh, stale, target }
      })
    }).catch((err: unknown) => {
      log.warn('Freshness check failed', { err })
    })
  }, FRESHNESS_CHECK_MS)
  timer.unref()
  return timer
}
