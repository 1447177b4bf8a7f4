/**
 * The CSS's Prometheus series. Fleet-wide figures only: no label names an edge or an object, so
 * the series count stays the same at 10 or 10,000 edges.
 */
import { counter, gauge, histogram, mirroredCounter, type Histogram, type Registry } from '../common/metrics.js'
import type { SyncObserver } from './handlers/index.js'
import type { SyncCounters } from './sync.js'

export interface CssMetricSources {
  counters: () => SyncCounters
  /** Registered nodes by whether they count as online (heartbeat within NodeOfflineAfterSeconds). */
  nodes: () => Promise<{ online: number; offline: number }>
  /** Edges with a live connection (MQTT or the HTTP link). */
  connected: () => number
  /** Chunked transfers in progress and chunk bytes moved, both ways. */
  transfers: () => TransferFigures
  /** This instance's view of the leader lease. */
  lease: () => { leader: boolean; version?: number }
}

export interface TransferFigures {
  /** Edges fetching an object's chunks from this CSS now. */
  downActive: number
  /** Chunk bytes served to edges since start. */
  downBytes: number
  /** Edge-to-cloud transfers in progress. */
  upActive: number
  /** Chunk bytes received from edges since start (repeats included). */
  upBytes: number
}

export class CssMetrics implements SyncObserver {
  readonly #acks
  readonly #delivered: Histogram
  readonly #consumed: Histogram
  readonly #registrations

  constructor (r: Registry, s: CssMetricSources) {
    this.#acks = counter(r, 'edgesync_css_edge_acks_total', 'Acks from edges by state', ['state'])
    this.#delivered = histogram(
      r,
      'edgesync_css_publish_to_delivered_seconds',
      'From writing an instance to an edge acknowledging it received'
    )
    this.#consumed = histogram(
      r,
      'edgesync_css_publish_to_consumed_seconds',
      'From writing an instance to an edge app consuming it'
    )
    this.#registrations = counter(r, 'edgesync_css_registrations_total', 'Edge registrations (each one a resync)')
    mirroredCounter(r, 'edgesync_css_edge_messages_received_total', 'Messages from edges', () => s.counters().received)
    mirroredCounter(r, 'edgesync_css_edge_messages_dropped_total', 'Malformed messages from edges', () => s.counters().dropped)
    mirroredCounter(r, 'edgesync_css_messages_published_total', 'Messages published to edges', () => s.counters().published)
    mirroredCounter(
      r,
      'edgesync_css_edge_messages_refused_total',
      'Edge messages refused, by reason',
      () => s.counters().refused as Record<string, number>,
      'reason'
    )
    gauge(r, 'edgesync_css_edges_connected', 'Edges with a live connection', [], (g) => {
      g.set(s.connected())
    })
    gauge(r, 'edgesync_css_transfers_active', 'Chunked transfers in progress, by direction', ['direction'], (g) => {
      const t = s.transfers()
      g.set({ direction: 'down' }, t.downActive)
      g.set({ direction: 'up' }, t.upActive)
    })
    mirroredCounter(
      r,
      'edgesync_css_transfer_bytes_total',
      'Chunk bytes moved, by direction (down: served to edges; up: received from edges)',
      () => {
        const t = s.transfers()
        return { down: t.downBytes, up: t.upBytes }
      },
      'direction'
    )
    gauge(r, 'edgesync_css_leader', 'Whether this instance holds the lease for the fleet-wide sweeps', [], (g) => {
      g.set(s.lease().leader ? 1 : 0)
    })
    gauge(r, 'edgesync_css_lease_term', 'The newest lease term this instance has seen (the fencing version)', [], (g) => {
      g.set(s.lease().version ?? 0)
    })
    gauge(r, 'edgesync_css_nodes', 'Registered edges by state', ['state'], async (g) => {
      const n = await s.nodes()
      g.set({ state: 'online' }, n.online)
      g.set({ state: 'offline' }, n.offline)
    })
  }

  acked (state: 'received' | 'consumed' | 'deleted' | 'error', ageSeconds: number | undefined): void {
    this.#acks.inc({ state })
    if (ageSeconds === undefined) return
    if (state === 'received') this.#delivered.observe(ageSeconds)
    if (state === 'consumed') this.#consumed.observe(ageSeconds)
  }

  registered (): void {
    this.#registrations.inc()
  }
}
