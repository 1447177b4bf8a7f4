/**
 * EMS changes as rollouts: a layer edit (`{layer, doc}`) or a bulk change (`{bulk: {path, value,
 * site | selector}}`). Each wave's edges get their effective config computed with the change (a
 * new version each); the layer itself is written only after the last wave, so edges not reached
 * yet, and later changes, do not see it before then. Abort publishes each changed edge's previous
 * version again. Edges pinned by a rollback, or whose config is incomplete, are skipped.
 */
import type { RolloutDriver } from '../../css/rollouts/model.js'
import { ValidationError } from '../../common/errors.js'
import { forEachLimit } from '../../common/concurrency.js'
import type { Json } from './layers.js'
import { parseLayer, withValueAt, type EmsService, type LayerRef } from './config-service.js'

type Obj = Record<string, Json>
/** Configs published at once per wave (as a layer change does). */
const PUBLISH_IN_FLIGHT = 32
export type EmsChange =
  | { layer: string; doc: Obj }
  | { bulk: { path: string; value: Json; site?: string; selector?: Record<string, string> } }

function isChange (c: unknown): c is EmsChange {
  if (typeof c !== 'object' || c === null) return false
  const x = c as Record<string, unknown>
  return (
    (typeof x.layer === 'string' && typeof x.doc === 'object' && x.doc !== null) ||
    (typeof x.bulk === 'object' &&
      x.bulk !== null &&
      typeof (x.bulk as Record<string, unknown>).path === 'string')
  )
}

export function emsRolloutDriver (ems: EmsService, edgeType: string): RolloutDriver {
  /** The layer documents the change writes, each with the edges it is for (undefined: all it touches). */
  const layers = async (
    orgId: string,
    change: unknown
  ): Promise<Array<{ ref: LayerRef; doc: Obj; only?: string }>> => {
    if (!isChange(change)) { throw new ValidationError('ems: give {layer, doc} or {bulk: {path, value, site | selector}}') }
    if ('layer' in change) return [{ ref: parseLayer(change.layer), doc: change.doc }]
    const b = change.bulk
    if ((b.site === undefined) === (b.selector === undefined)) { throw new ValidationError('ems bulk: give either site or selector') }
    const patch = (doc: Obj): Obj => withValueAt(doc, b.path, b.value)
    if (b.site !== undefined) {
      const ref: LayerRef = { kind: 'site', id: b.site }
      return [{ ref, doc: patch((await ems.getLayer(orgId, ref))?.doc ?? {}) }]
    }
    const out: Array<{ ref: LayerRef; doc: Obj; only?: string }> = []
    for (const n of await ems.edges(orgId)) {
      if (!Object.entries(b.selector ?? {}).every(([k, v]) => n.properties[k] === v)) continue
      const ref: LayerRef = { kind: 'edge', id: n.destinationId }
      out.push({ ref, doc: patch((await ems.getLayer(orgId, ref))?.doc ?? {}), only: n.destinationId })
    }
    return out
  }
  /**
   * The plan made when the rollout was created, reused by its waves while no layer of the org
   * changed since (a wave then costs its publishes only); else each wave plans its own edges.
   */
  const made = new Map<string, { stamp: string, at: number, plans: Awaited<ReturnType<typeof plans>> }>()
  const cacheKey = (orgId: string, change: unknown): string => `${orgId}\u0000${JSON.stringify(change)}`
  const reuse = async (orgId: string, change: unknown, edges: string[]): Promise<Awaited<ReturnType<typeof plans>>> => {
    const hit = made.get(cacheKey(orgId, change))
    const fresh = hit !== undefined && hit.stamp === (await ems.layerStamp(orgId))
    if (fresh && edges.every((e) => hit.plans.has(e))) return hit.plans
    return await plans(orgId, change, new Set(edges))
  }
  /** Each edge's plan; with `only`, just those edges (a wave: the others cost nothing). */
  const plans = async (
    orgId: string,
    change: unknown,
    only?: ReadonlySet<string>
  ): Promise<Map<string, Awaited<ReturnType<EmsService['plan']>>[number]>> => {
    const out = new Map<string, Awaited<ReturnType<EmsService['plan']>>[number]>()
    for (const l of await layers(orgId, change)) {
      if (only !== undefined && l.only !== undefined && !only.has(l.only)) continue
      for (const p of await ems.plan(orgId, l.ref, l.doc, only)) {
        if (l.only === undefined || l.only === p.outcome.edge) out.set(p.outcome.edge, p)
      }
    }
    return out
  }
  return {
    plan: async (orgId, change) => {
      const stamp = await ems.layerStamp(orgId)
      const planned = await plans(orgId, change)
      for (const [k, v] of made) if (Date.now() - v.at > 3_600_000) made.delete(k)
      made.set(cacheKey(orgId, change), { stamp, at: Date.now(), plans: planned })
      const all = [...planned.values()]
      const bad = all.filter((p) => p.outcome.problems !== undefined)
      if (bad.length > 0) {
        throw new ValidationError(
          `The change makes the config of ${bad.length} edge(s) invalid; no rollout`,
          {
            details: bad.map((b) => ({ edge: b.outcome.edge, problems: b.outcome.problems }))
          }
        )
      }
      const skipped = all.flatMap((p) =>
        p.outcome.pinned !== undefined
          ? [{ edge: p.outcome.edge, why: `pinned by a rollback to v${p.outcome.pinned.version}` }]
          : p.outcome.incomplete !== undefined
            ? [{ edge: p.outcome.edge, why: `incomplete config (no ${p.outcome.incomplete.join(', ')})` }]
            : []
      )
      const edges = all
        .filter(
          (p) =>
            p.outcome.changes.length > 0 &&
            p.outcome.pinned === undefined &&
            p.outcome.incomplete === undefined
        )
        .map((p) => ({ edge: p.outcome.edge, destinationType: edgeType, changes: p.outcome.changes }))
      return { edges, skipped }
    },
    send: async (orgId, change, edges, opts) => {
      const by = await reuse(orgId, change, edges)
      const out = new Map<
        string,
        {
          key: { orgId: string; objectType: string; objectId: string }
          instanceId: number
          from?: number
          to?: number
        }
      >()
      // As a layer change publishes: a few at once, so their writes share the store's commits.
      await forEachLimit(edges, PUBLISH_IN_FLIGHT, async (edge) => {
        const p = by.get(edge)
        if (p === undefined || p.outcome.changes.length === 0) return
        const windows = opts
          .windows(edge)
          .map((w) => ({ cron: w.cron, duration_s: w.durationSeconds, time_zone: w.timeZone }))
        const sent = await ems.publishConfig(
          orgId,
          edge,
          p.next,
          opts.actor,
          windows.length === 0 ? {} : { apply_windows: windows }
        )
        out.set(edge, {
          key: { orgId, objectType: 'ems-config', objectId: edge },
          instanceId: sent.instanceId,
          from: p.currentVersion,
          to: sent.version
        })
      })
      return out
    },
    revert: async (orgId, _change, edges, actor) => {
      const out = new Map<string, { to?: number; error?: string }>()
      for (const { edge, rec } of edges) {
        if (rec.from === undefined || rec.from === 0) {
          out.set(edge, { error: 'it had no config before' })
          continue
        }
        try {
          out.set(edge, { to: await ems.republish(orgId, edge, rec.from, actor) })
        } catch (err) {
          out.set(edge, { error: (err as Error).message })
        }
      }
      return out
    },
    finish: async (orgId, change, actor, unfinished) => {
      made.delete(cacheKey(orgId, change))
      // Every edge reached already has its config: the layer is written as it is, and only edges
      // that failed or timed out (under the thresholds) get it again, as a plain change would.
      for (const l of await layers(orgId, change)) {
        await ems.writeLayer(orgId, l.ref, l.doc, actor, 'completed rollout')
      }
      if (unfinished.length === 0) return
      for (const p of (await plans(orgId, change, new Set(unfinished))).values()) {
        const ready = p.outcome.changes.length > 0 && p.outcome.problems === undefined
        if (ready && p.outcome.pinned === undefined && p.outcome.incomplete === undefined) {
          await ems.publishConfig(orgId, p.outcome.edge, p.next, actor)
        }
      }
    }
  }
}
