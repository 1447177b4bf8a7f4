/**
 * The EMS's acceptance figures as Prometheus series on the CSS: configuration freshness (share of
 * edges running the newest config, or behind it for less than an hour) and edges' rollbacks and
 * refusals. Freshness is computed for the whole fleet at most once a minute, or every 5 s while
 * edges report verdicts.
 */
import { counter, gauge, type Counter, type Registry } from '../../common/metrics.js'
import type { Outcome } from '../../css/handlers/index.js'

const FRESH_FOR_MS = 3600_000
/** Recomputed at most this often when nothing changed... */
const RECOMPUTE_MS = 60_000
/** ...and this often after an edge's verdict. */
const RECOMPUTE_CHANGED_MS = 5_000

export interface FreshnessSource {
  orgs: () => Promise<string[]>
  status: (orgId: string) => Promise<Array<Record<string, unknown>>>
}

export class EmsCloudMetrics {
  readonly #verdicts: Counter
  #last: { at: number; fresh: number; stale: number } | undefined
  #changed = false
  /** Edges with a config, fresh and stale (recomputed as described above). */
  readonly freshness: () => Promise<{ fresh: number; stale: number }>

  constructor (r: Registry, src: FreshnessSource) {
    this.#verdicts = counter(r, 'edgesync_ems_edge_verdicts_total', 'EMS config verdicts of edges', ['verdict'])
    this.freshness = async (): Promise<{ fresh: number; stale: number }> => {
      const last = this.#last
      const age = last === undefined ? Infinity : Date.now() - last.at
      if (last !== undefined && age <= RECOMPUTE_MS && !(this.#changed && age > RECOMPUTE_CHANGED_MS)) return last
      this.#changed = false
      let fresh = 0
      let stale = 0
      for (const org of await src.orgs()) {
        for (const e of await src.status(org)) {
          if (e.latest === undefined) continue // no config published for it yet
          const behind = typeof e.behindSince === 'string' ? Date.now() - Date.parse(e.behindSince) : 0
          if (behind < FRESH_FOR_MS) fresh++
          else stale++
        }
      }
      this.#last = { at: Date.now(), fresh, stale }
      return this.#last
    }
    gauge(r, 'edgesync_ems_edges', 'Edges with an EMS config, by freshness (behind the newest for under 1 h)', ['freshness'], async (g) => {
      const f = await this.freshness()
      g.set({ freshness: 'fresh' }, f.fresh)
      g.set({ freshness: 'stale' }, f.stale)
    })
    gauge(r, 'edgesync_ems_config_freshness_ratio', 'Share of edges whose config is the newest or behind it for under 1 h', [], async (g) => {
      const f = await this.freshness()
      g.set(f.fresh + f.stale === 0 ? 1 : f.fresh / (f.fresh + f.stale))
    })
  }

  /** An edge's verdict on a config: committed, refused (invalid), rolled back, or failed outright. */
  verdict (ack: Outcome): void {
    const m = ack.message ?? ''
    const verdict = ack.state === 'consumed'
      ? 'committed'
      : m.startsWith('rolled back') ? 'rolled_back' : m.startsWith('rejected') ? 'refused' : 'failed'
    this.#verdicts.inc({ verdict })
    this.#changed = true
  }
}
