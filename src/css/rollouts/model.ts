/**
 * Rollouts: a change sent to a set of edges in waves. Only the CSS holding the lease advances them
 * (engine.ts), from state kept in the settings store, so a restart or another instance carries on
 * where it was. Operators' commands are kept apart from the state (`control`), written only by
 * the API, so a command is never lost to a concurrent engine write.
 */
import type { ObjectKey } from '../../common/model.js'
import type { MaintenanceWindow } from '../../common/windows.js'

/** One wave: a share of the edges, a count, or (exponential) sizes that grow. */
export type WaveSpec = { percent: number } | { count: number }

export interface RolloutPolicy {
  /** Share of a wave's edges that must have consumed the change before the next wave (0-1). */
  successThreshold: number
  /** Share with `error` or `timedOut` that stops the rollout (0-1; 0: the first failure does). */
  errorThreshold: number
  onError: 'pause' | 'abort'
  /** Wait for `approve` before each wave after the first. */
  approval: boolean
  /** A delivery not consumed within this is `timedOut`. */
  deadlineSeconds: number
  /**
   * A wave starts no sooner than this after the previous one started (the exponential mode's
   * "N per minute": 60). 0: as soon as the previous one held.
   */
  minWaveSeconds?: number
  /**
   * Edges outside their maintenance window: `hold` sends the change and the edge applies it
   * inside the window; `wait` sends it only when the window is open; `ignore` sends at once.
   */
  windows: 'hold' | 'wait' | 'ignore'
}

export type RolloutStatus = 'running' | 'paused' | 'awaiting-approval' | 'aborting' | 'aborted' | 'completed'
export type EdgeState =
  | 'pending'
  | 'waiting-window'
  | 'sent'
  | 'consumed'
  | 'error'
  | 'timedOut'
  | 'reverted'
  | 'revert-failed'
  | 'skipped'

export interface EdgeRecord {
  wave: number
  /** The edge's destination type. */
  type: string
  state: EdgeState
  key?: ObjectKey
  instanceId?: number
  /** What the edge had before (EMS: config version; objects: instance) and what it was sent. */
  from?: number
  to?: number
  sentAt?: string
  doneAt?: string
  message?: string
  /** After an abort: the version or instance it was returned to. */
  revertedTo?: number
}

export interface Rollout {
  id: string
  orgId: string
  /** The driver: `ems` (layer edit or bulk change) or `object`. */
  kind: string
  change: unknown
  policy: RolloutPolicy
  createdBy: string
  createdAt: string
  status: RolloutStatus
  /** Why it is paused or aborted. */
  reason?: string
  wave: number
  waves: string[][]
  edges: Record<string, EdgeRecord>
  skipped: Array<{ edge: string; why: string }>
  history: Array<{ at: string; event: string; wave?: number; detail?: string }>
  updatedAt: string
}

export interface RolloutControl {
  paused?: boolean
  abort?: boolean
  /** The highest wave approved to start. */
  approved?: number
  /** Waves whose error threshold an operator accepted (resume after an error pause). */
  accepted?: number[]
}

/** What a driver needs to know about one planned edge. */
export interface PlannedEdge {
  edge: string
  destinationType: string
  /** The per-edge diff (EMS), for the preview. */
  changes?: unknown[]
}

export interface SentEdge {
  key: ObjectKey
  instanceId: number
  from?: number
  to?: number
}

/** A kind of change a rollout can carry (EMS changes come from the EMS extension). */
export interface RolloutDriver {
  /** Checks the change and lists the edges it changes; throws ValidationError when it cannot go. */
  plan: (
    orgId: string,
    change: unknown
  ) => Promise<{ edges: PlannedEdge[]; skipped: Array<{ edge: string; why: string }> }>
  /** Sends the change to these edges (the wave, or its edges whose window opened). */
  send: (
    orgId: string,
    change: unknown,
    edges: string[],
    opts: { actor: string; rollout: string; windows: (edge: string) => MaintenanceWindow[] }
  ) => Promise<Map<string, SentEdge>>
  /** Returns these edges to what they had before (`from`); the version or instance they got. */
  revert: (
    orgId: string,
    change: unknown,
    edges: Array<{ edge: string; rec: EdgeRecord }>,
    actor: string
  ) => Promise<Map<string, { to?: number; error?: string }>>
  /**
   * After the last wave (EMS: the layer itself is written, so later changes build on it; edges
   * that failed or timed out under the thresholds, `unfinished`, get it again).
   */
  finish: (orgId: string, change: unknown, actor: string, unfinished: string[]) => Promise<void>
}

/** Splits sorted edges into waves. Percentages are cumulative shares (rounded down, at least one). */
export function splitWaves (
  edges: string[],
  spec: WaveSpec[] | { exponential: { start: number; factor: number } }
): string[][] {
  const out: string[][] = []
  if (!Array.isArray(spec)) {
    let size = spec.exponential.start
    for (let i = 0; i < edges.length;) {
      out.push(edges.slice(i, i + Math.max(1, Math.floor(size))))
      i += Math.max(1, Math.floor(size))
      size *= spec.exponential.factor
    }
    return out
  }
  const total = spec.reduce((a, w) => a + ('percent' in w ? w.percent : 0), 0)
  let done = 0
  let share = 0
  spec.forEach((w, i) => {
    let n: number
    if ('count' in w) n = w.count
    else {
      share += w.percent
      n = Math.max(1, Math.floor((share / Math.max(total, 100)) * edges.length) - done)
    }
    if (i === spec.length - 1 && total >= 100) n = edges.length - done
    out.push(edges.slice(done, done + n))
    done += n
  })
  if (done < edges.length) out.push(edges.slice(done))
  return out.filter((w) => w.length > 0)
}
