/** The ESS's Prometheus series: its link to the CSS, the objects it holds, transfers, dropped messages. */
import { counter, gauge, mirroredCounter, mirroredSeries, type Counter, type Registry } from '../common/metrics.js'
import type { Store } from '../storage/index.js'
import type { EdgeLink } from '../transport/index.js'
import type { EdgeSync } from './sync.js'
import { PLUGIN_STATES, type PluginHost } from './plugins.js'

export interface EssMetricSources {
  link: EdgeLink
  sync: EdgeSync
  store: Store
  orgId: string
  plugins: PluginHost
}

export class EssMetrics {
  readonly #connects: Counter

  constructor (r: Registry, s: EssMetricSources) {
    this.#connects = counter(r, 'edgesync_ess_connects_total', 'Connections (and reconnections) to the CSS')
    gauge(r, 'edgesync_ess_connected', 'Whether the ESS is connected to the CSS, by channel', ['channel'], (g) => {
      g.reset()
      g.set({ channel: s.link.channel }, s.link.connected ? 1 : 0)
    })
    gauge(r, 'edgesync_ess_objects', 'Objects held, by status', ['status'], async (g) => {
      const counts: Record<string, number> = {}
      let cursor: string | undefined
      do {
        const q = { orgId: s.orgId, limit: 1000, ...(cursor === undefined ? {} : { cursor }) }
        const page = await s.store.objects.list(q)
        for (const o of page.items) counts[o.status] = (counts[o.status] ?? 0) + 1
        cursor = page.next
      } while (cursor !== undefined)
      g.reset()
      for (const [status, n] of Object.entries(counts)) g.set({ status }, n)
    })
    gauge(r, 'edgesync_ess_transfers_active', 'Transfers from the CSS in progress', [], (g) => {
      g.set(s.sync.transfers.active)
    })
    mirroredCounter(r, 'edgesync_ess_transfer_bytes_total', 'Object data received in chunks', () => s.sync.transfers.stats.bytesReceived)
    // The enum pattern: one series per state, 1 for the state the plugin is in.
    gauge(r, 'edgesync_ess_plugin_state', 'Each plugin\'s state (1 for the current one)', ['plugin', 'state'], (g) => {
      for (const [plugin, f] of s.plugins.figures()) {
        for (const state of PLUGIN_STATES) g.set({ plugin, state }, f.state === state ? 1 : 0)
      }
    })
    mirroredSeries(r, 'edgesync_ess_plugin_objects_total', 'Objects each plugin handled, by verdict', ['plugin', 'verdict'], () =>
      [...s.plugins.figures()].flatMap(([plugin, f]): Array<[Record<string, string>, number]> => [
        [{ plugin, verdict: 'consumed' }, f.consumed],
        [{ plugin, verdict: 'refused' }, f.refused]
      ])
    )
    mirroredCounter(r, 'edgesync_ess_messages_dropped_total', 'Malformed or unverifiable messages from the CSS', () => s.sync.dropped)
  }

  connected (): void {
    this.#connects.inc()
  }
}
