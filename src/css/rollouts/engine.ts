/**
 * Advances rollouts, on the lease holder only (a tick every second): sends each wave, reads each
 * edge's delivery state, marks late ones `timedOut`, checks the wave against the rollout's
 * thresholds, waits for approval or a maintenance window, and on abort returns every edge it
 * changed to what it had before. Every step is written to the store before the next one, so a
 * CSS that stops mid-rollout (or loses the lease) leaves it where the next holder continues.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from '../../common/log.js'
import type { NodeRecord } from '../../common/model.js'
import type { SettingStore, Store } from '../../storage/index.js'
import type { EdgeRecord, Rollout, RolloutControl, RolloutDriver, RolloutPolicy, WaveSpec } from './model.js'
import { splitWaves } from './model.js'
import { openUntil, windowsFor, type MaintenanceWindow } from '../../common/windows.js'
import { NotFoundError, SyncError, SyncErrorCode, ValidationError } from '../../common/errors.js'

const STATE = 'rollout/'
const CONTROL = 'rollout-control/'
export const WINDOW = 'window/'
const DONE: ReadonlySet<string> = new Set(['consumed', 'error', 'timedOut', 'skipped'])
const CHANGED: ReadonlySet<string> = new Set(['sent', 'consumed', 'error', 'timedOut'])

export interface CreateRollout {
  kind: string
  change: unknown
  waves: WaveSpec[] | { exponential: { start: number; factor: number } }
  policy: RolloutPolicy
  id?: string
}

export class RolloutEngine {
  readonly #store: Store
  readonly #settings: SettingStore
  /** Where rollouts and maintenance windows are kept. */
  get settings (): SettingStore {
    return this.#settings
  }

  readonly #drivers: () => Map<string, RolloutDriver>
  readonly #log: Logger
  readonly audit: (
    orgId: string,
    actor: string,
    action: string,
    target: string,
    detail?: Record<string, unknown>
  ) => Promise<void>

  #ticking = false

  constructor (store: Store, drivers: () => Map<string, RolloutDriver>, log: Logger) {
    this.#store = store
    this.#settings = store.settings
    this.#drivers = drivers
    this.#log = log
    this.audit = async (orgId, actor, action, target, detail) => {
      await store.audit.append({
        at: new Date().toISOString(),
        orgId,
        actor,
        action,
        target,
        ...(detail === undefined ? {} : { detail })
      })
    }
  }

  #driver (kind: string): RolloutDriver {
    const d = this.#drivers().get(kind)
    if (d === undefined) { throw new ValidationError(`No rollout kind ${kind} (kinds: ${[...this.#drivers().keys()].join(', ')})`) }
    return d
  }

  /** What a rollout would do: its waves with each edge's diff; nothing is written. */
  async preview (
    orgId: string,
    req: CreateRollout
  ): Promise<{
    waves: Array<Array<{ edge: string; changes?: unknown[] }>>
    skipped: Array<{ edge: string; why: string }>
  }> {
    const plan = await this.#driver(req.kind).plan(orgId, req.change)
    const by = new Map(plan.edges.map((e) => [e.edge, e]))
    const waves = splitWaves(plan.edges.map((e) => e.edge).sort(), req.waves)
    return {
      waves: waves.map((w) =>
        w.map((edge) => ({
          edge,
          ...(by.get(edge)?.changes === undefined ? {} : { changes: by.get(edge)?.changes })
        }))
      ),
      skipped: plan.skipped
    }
  }

  async create (orgId: string, req: CreateRollout, actor: string): Promise<Rollout> {
    const id = req.id ?? randomUUID().slice(0, 8)
    if ((await this.#settings.get(`${STATE}${orgId}/${id}`)) !== undefined) {
      throw new SyncError(SyncErrorCode.CONFLICT, `Rollout ${id} exists in org ${orgId}`)
    }
    const plan = await this.#driver(req.kind).plan(orgId, req.change)
    if (plan.edges.length === 0) throw new ValidationError('The change affects no edge: nothing to roll out')
    const waves = splitWaves(plan.edges.map((e) => e.edge).sort(), req.waves)
    const now = new Date().toISOString()
    const types = new Map(plan.edges.map((e) => [e.edge, e.destinationType]))
    const edges: Record<string, EdgeRecord> = {}
    waves.forEach((w, i) => {
      for (const e of w) edges[e] = { wave: i, type: types.get(e) ?? '', state: 'pending' }
    })
    const r: Rollout = {
      id,
      orgId,
      kind: req.kind,
      change: req.change,
      policy: req.policy,
      createdBy: actor,
      createdAt: now,
      status: 'running',
      wave: 0,
      waves,
      edges,
      skipped: plan.skipped,
      history: [{ at: now, event: 'created', detail: `${plan.edges.length} edges in ${waves.length} waves` }],
      updatedAt: now
    }
    await this.#save(r)
    await this.audit(orgId, actor, 'rollout.create', id, {
      kind: req.kind,
      edges: plan.edges.length,
      waves: waves.map((w) => w.length)
    })
    return r
  }

  async get (orgId: string, id: string): Promise<Rollout> {
    const raw = await this.#settings.get(`${STATE}${orgId}/${id}`)
    if (raw === undefined) throw new NotFoundError(`No rollout ${id} in org ${orgId}`)
    return JSON.parse(raw) as Rollout
  }

  async list (orgId: string): Promise<Rollout[]> {
    return (await this.#settings.list(`${STATE}${orgId}/`)).map(([, v]) => JSON.parse(v) as Rollout)
  }

  async #control (orgId: string, id: string): Promise<RolloutControl> {
    const raw = await this.#settings.get(`${CONTROL}${orgId}/${id}`)
    return raw === undefined ? {} : (JSON.parse(raw) as RolloutControl)
  }

  /** An operator's command; the engine acts on it at its next tick. */
  async command (
    orgId: string,
    id: string,
    action: 'pause' | 'resume' | 'abort' | 'approve',
    actor: string
  ): Promise<RolloutControl> {
    const r = await this.get(orgId, id)
    if (r.status === 'aborted' || r.status === 'completed') {
      throw new SyncError(SyncErrorCode.CONFLICT, `Rollout ${id} is ${r.status}`)
    }
    const c = await this.#control(orgId, id)
    if (action === 'pause') c.paused = true
    if (action === 'abort') c.abort = true
    if (action === 'resume') {
      c.paused = false
      c.accepted = [...new Set([...(c.accepted ?? []), r.wave])]
    }
    if (action === 'approve') {
      if (r.status !== 'awaiting-approval') { throw new SyncError(SyncErrorCode.CONFLICT, `Rollout ${id} is not waiting for approval (${r.status})`) }
      c.approved = Math.max(c.approved ?? 0, r.wave)
    }
    await this.#settings.set(`${CONTROL}${orgId}/${id}`, JSON.stringify(c))
    await this.audit(orgId, actor, `rollout.${action}`, id, { wave: r.wave })
    return c
  }

  /** One pass over every rollout still in progress (the lease holder calls it every second). */
  async tick (): Promise<void> {
    if (this.#ticking) return
    this.#ticking = true
    try {
      for (const [name, raw] of await this.#settings.list(STATE)) {
        const r = JSON.parse(raw) as Rollout
        if (r.status === 'completed' || r.status === 'aborted') continue
        try {
          await this.#advance(r)
        } catch (err) {
          this.#log.error('Rollout step failed; retried at the next tick', { err, rollout: name })
        }
      }
    } finally {
      this.#ticking = false
    }
  }

  async #save (r: Rollout): Promise<void> {
    r.updatedAt = new Date().toISOString()
    await this.#settings.set(`${STATE}${r.orgId}/${r.id}`, JSON.stringify(r))
  }

  #event (r: Rollout, event: string, detail?: string): void {
    r.history.push({
      at: new Date().toISOString(),
      event,
      wave: r.wave,
      ...(detail === undefined ? {} : { detail })
    })
    if (r.history.length > 500) r.history.splice(0, r.history.length - 500)
  }

  async #advance (r: Rollout): Promise<void> {
    const c = await this.#control(r.orgId, r.id)
    if (c.abort === true) {
      await this.#abort(r, 'aborted by an operator')
      return
    }
    if (r.status === 'aborting') {
      await this.#abort(r, r.reason ?? 'aborted')
      return
    }
    if (c.paused === true) {
      if (r.status !== 'paused' || r.reason !== 'paused by an operator') {
        r.status = 'paused'
        r.reason = 'paused by an operator'
        this.#event(r, 'paused', r.reason)
        await this.#save(r)
      }
      // Deliveries still land while paused: record them, send nothing new.
      if (await this.#observe(r)) await this.#save(r)
      return
    }
    if (r.status === 'paused') {
      if ((c.accepted ?? []).includes(r.wave) || r.reason === 'paused by an operator') {
        r.status = 'running'
        Reflect.deleteProperty(r, 'reason')
        this.#event(r, 'resumed')
      } else {
        if (await this.#observe(r)) await this.#save(r)
        return
      }
    }
    if (r.status === 'awaiting-approval') {
      if ((c.approved ?? -1) < r.wave) return
      r.status = 'running'
      this.#event(r, 'approved')
    }
    let dirty = await this.#send(r)
    if (await this.#observe(r)) dirty = true
    const wave = (r.waves[r.wave] ?? []).map((e) => r.edges[e] as EdgeRecord)
    const failed = wave.filter((e) => e.state === 'error' || e.state === 'timedOut').length
    if (failed / wave.length > r.policy.errorThreshold && !(c.accepted ?? []).includes(r.wave)) {
      const why = `wave ${r.wave + 1}: ${failed} of ${wave.length} edges failed or timed out (threshold ${r.policy.errorThreshold})`
      if (r.policy.onError === 'abort') {
        await this.#abort(r, why)
        return
      }
      r.status = 'paused'
      r.reason = why
      this.#event(r, 'paused', why)
      await this.#save(r)
      return
    }
    if (wave.every((e) => DONE.has(e.state))) {
      const ok = wave.filter((e) => e.state === 'consumed').length
      if (ok / wave.length < r.policy.successThreshold) {
        r.status = 'paused'
        r.reason = `wave ${r.wave + 1}: ${ok} of ${wave.length} consumed, under the success threshold ${r.policy.successThreshold}`
        this.#event(r, 'paused', r.reason)
        await this.#save(r)
        return
      }
      this.#event(r, 'wave done', `${ok} of ${wave.length} consumed`)
      if (r.wave === r.waves.length - 1) {
        const unfinished = Object.entries(r.edges)
          .filter(([, e]) => e.state === 'error' || e.state === 'timedOut')
          .map(([edge]) => edge)
        await this.#driver(r.kind).finish(r.orgId, r.change, r.createdBy, unfinished)
        r.status = 'completed'
        this.#event(r, 'completed')
        await this.audit(r.orgId, 'css', 'rollout.complete', r.id)
      } else {
        r.wave++
        if (r.policy.approval) {
          r.status = 'awaiting-approval'
          this.#event(r, 'awaiting approval')
        } else {
          // The next wave goes now, not at the next tick.
          await this.#save(r)
          await this.#advance(r)
          return
        }
      }
      dirty = true
    }
    if (dirty) await this.#save(r)
  }

  async #windows (orgId: string): Promise<MaintenanceWindow[]> {
    return (await this.#settings.list(`${WINDOW}${orgId}/`)).map(
      ([, v]) => JSON.parse(v) as MaintenanceWindow
    )
  }

  /** Sends the current wave to its pending edges (those inside their window, with `wait`). */
  async #send (r: Rollout): Promise<boolean> {
    const pending = (r.waves[r.wave] ?? []).filter((e) => {
      const s = r.edges[e]?.state
      return s === 'pending' || s === 'waiting-window'
    })
    if (pending.length === 0) return false
    const pace = r.policy.minWaveSeconds ?? 0
    if (pace > 0 && r.wave > 0) {
      const prev = (r.waves[r.wave - 1] ?? []).map((e) => Date.parse(r.edges[e]?.sentAt ?? '')).filter(Number.isFinite)
      if (prev.length > 0 && Date.now() - Math.min(...prev) < pace * 1000) return false // paced: not yet
    }
    const windows = r.policy.windows === 'ignore' ? [] : await this.#windows(r.orgId)
    const nodes = new Map<string, NodeRecord>()
    if (windows.length > 0) {
      for (const e of pending) {
        const found = await this.#nodeOf(r, e)
        if (found !== undefined) nodes.set(e, found)
      }
    }
    const of = (edge: string): MaintenanceWindow[] => windowsFor(windows, nodes.get(edge)?.properties ?? {})
    const now = Date.now()
    const ready =
      r.policy.windows === 'wait'
        ? pending.filter((e) => {
          const w = of(e)
          return w.length === 0 || w.some((x) => openUntil(x, now) !== undefined)
        })
        : pending
    let dirty = false
    for (const e of pending) {
      const rec = r.edges[e] as EdgeRecord
      if (!ready.includes(e) && rec.state !== 'waiting-window') {
        rec.state = 'waiting-window'
        dirty = true
      }
    }
    if (ready.length === 0) return dirty
    // Windows travel with the change only when the edge is to hold it until one opens.
    const held = r.policy.windows === 'hold' ? of : () => []
    // When sending started: a wave's time runs from here, not from when its last edge was sent.
    const startedAt = new Date().toISOString()
    const sent = await this.#driver(r.kind).send(r.orgId, r.change, ready, {
      actor: r.createdBy,
      rollout: r.id,
      windows: held
    })
    const at = new Date().toISOString()
    for (const e of ready) {
      const s = sent.get(e)
      const rec = r.edges[e] as EdgeRecord
      if (s === undefined) {
        rec.state = 'skipped'
        rec.message = 'nothing to send (already up to date)'
        rec.doneAt = at
        continue
      }
      Object.assign(
        rec,
        { state: 'sent', key: s.key, instanceId: s.instanceId, sentAt: startedAt },
        s.from === undefined ? {} : { from: s.from },
        s.to === undefined ? {} : { to: s.to }
      )
    }
    this.#event(r, 'sent', `${ready.length} edges`)
    return true
  }

  async #nodeOf (r: Rollout, edge: string): Promise<NodeRecord | undefined> {
    const type = r.edges[edge]?.type
    return type === undefined
      ? undefined
      : await this.#store.nodes.get({ orgId: r.orgId, destinationType: type, destinationId: edge })
  }

  /** Reads each sent edge's delivery: consumed, error, or timedOut past the deadline. */
  async #observe (r: Rollout): Promise<boolean> {
    let dirty = false
    const now = Date.now()
    for (const [edge, rec] of Object.entries(r.edges)) {
      if (rec.state !== 'sent' || rec.key === undefined) continue
      const n = await this.#nodeOf(r, edge)
      const d = n === undefined ? undefined : await this.#store.deliveries.get(rec.key, n)
      const at = new Date().toISOString()
      if (
        d !== undefined &&
        d.instanceId === rec.instanceId &&
        (d.status === 'consumed' || d.status === 'error')
      ) {
        rec.state = d.status
        rec.doneAt = d.times[d.status] ?? at
        if (d.message !== undefined && d.message !== '') rec.message = d.message
        dirty = true
      } else if (rec.sentAt !== undefined && now - Date.parse(rec.sentAt) > r.policy.deadlineSeconds * 1000) {
        rec.state = 'timedOut'
        rec.doneAt = at
        rec.message = `not consumed within ${r.policy.deadlineSeconds} s${d === undefined ? '' : ` (last: ${d.status} ${d.detail ?? ''})`}`
        dirty = true
      }
    }
    return dirty
  }

  /** Returns every edge the rollout changed to what it had, skips the rest, and reports it. */
  async #abort (r: Rollout, why: string): Promise<void> {
    if (r.status !== 'aborting') {
      r.status = 'aborting'
      r.reason = why
      this.#event(r, 'aborting', why)
      await this.#save(r)
    }
    const changed = Object.entries(r.edges)
      .filter(([, rec]) => CHANGED.has(rec.state))
      .map(([edge, rec]) => ({ edge, rec }))
    const result =
      changed.length === 0
        ? new Map()
        : await this.#driver(r.kind).revert(r.orgId, r.change, changed, r.createdBy)
    const at = new Date().toISOString()
    for (const { edge, rec } of changed) {
      const res = result.get(edge) as { to?: number; error?: string } | undefined
      rec.message = `${rec.state}${rec.message === undefined ? '' : ` (${rec.message})`}; ${res?.error === undefined ? 'reverted' : `revert failed: ${res.error}`}`
      rec.state = res?.error === undefined ? 'reverted' : 'revert-failed'
      if (res?.to !== undefined) rec.revertedTo = res.to
      rec.doneAt = at
    }
    for (const rec of Object.values(r.edges)) {
      if (rec.state === 'pending' || rec.state === 'waiting-window') {
        rec.state = 'skipped'
        rec.message = 'never sent (aborted)'
      }
    }
    r.status = 'aborted'
    this.#event(r, 'aborted', `${changed.length} edges reverted`)
    await this.#save(r)
    await this.audit(r.orgId, 'css', 'rollout.aborted', r.id, { why, reverted: changed.map((c) => c.edge) })
  }
}
