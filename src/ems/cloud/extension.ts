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
      return {
        describe: async (orgId, nodes) => await ems.describe(orgId, nodes),
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
          await closeSockets()
        }
      }
    }
  }
}

const FRESHNESS_CHECK_MS = 60_000

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
