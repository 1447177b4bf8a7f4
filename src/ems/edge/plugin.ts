/**
 * The EMS edge plugin: verify (the ESS checked the signature) -> validate -> stage -> apply at the
 * next core cycle (or at once) -> watch health for a window -> commit (consumed) or roll back to
 * the last known-good version and report why. The active and the previous known-good versions are
 * kept in files, so a restarted edge runs what it ran before.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from '../../common/log.js'
import type { EdgePlugin, PluginAnswer, PluginContext, PluginObject, PluginVerdict } from '../../ess/plugins.js'
import { EmsRuntime, emptyStats, type RuntimeStats } from './runtime.js'
import type { EmsConfig } from '../common/schema.js'
import { validateEmsConfig } from '../common/validate.js'
import { SyncError, SyncErrorCode } from '../../common/errors.js'
import { EmsMetrics } from './metrics.js'
import { nextOpen, openUntil } from '../../common/windows.js'
import { configHash } from '../common/config-hash.js'

interface Saved {
  version: number
  config: EmsConfig
}

interface LastApply {
  version: number | undefined
  at: string
  outcome: 'applied' | 'rolled_back' | 'refused' | 'failed'
  reason?: string
}

const EMPTY_STATS: RuntimeStats = emptyStats()

/**
 * The site's headline figures from the last poll (W, and % for SoC), by device profile: grid
 * (import > 0), PV (sum of inverters), battery (discharge > 0) and its state of charge.
 */
export function readingsOf (
  cfg: EmsConfig,
  values: ReadonlyMap<string, number>
): { gridW?: number, pvW?: number, batteryW?: number, soc?: number } {
  const sum = (profile: string, channel: string): number | undefined => {
    const v = cfg.modbus_devices
      .filter((d) => d.profile === profile)
      .map((d) => values.get(`${d.device_id}/${channel}`))
      .filter((x): x is number => x !== undefined)
    return v.length === 0 ? undefined : v.reduce((a, b) => a + b, 0)
  }
  const out: { gridW?: number, pvW?: number, batteryW?: number, soc?: number } = {}
  const put = (k: keyof typeof out, v: number | undefined): void => { if (v !== undefined) out[k] = v }
  put('gridW', sum('grid_meter', 'ActivePower'))
  put('pvW', sum('pv_inverter', 'ActivePower'))
  put('batteryW', sum('battery', 'ActivePower'))
  const socs = cfg.modbus_devices.filter((d) => d.profile === 'battery')
    .map((d) => values.get(`${d.device_id}/Soc`)).filter((x): x is number => x !== undefined)
  if (socs.length > 0) out.soc = Math.round(socs.reduce((a, b) => a + b, 0) / socs.length)
  return out
}

async function readSaved (file: string): Promise<Saved | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Saved
  } catch {
    return undefined
  }
}

async function writeSaved (file: string, s: Saved): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(s))
  await rename(`${file}.tmp`, file)
}

export class EmsPlugin implements EdgePlugin {
  readonly name = 'ems'
  readonly objectTypes = ['ems-config'] as const
  runtime: EmsRuntime | undefined
  #log: Logger | undefined
  #dir = ''
  #active: Saved | undefined
  #previous: Saved | undefined
  #lastError: string | undefined
  #lastRollbackMs: number | undefined
  #defaultWindowMs: number | undefined
  #metrics: EmsMetrics | undefined
  /** The version being handled, and what became of the last one (the status pages show it). */
  #trying: number | undefined
  #lastApply: LastApply | undefined
  /** A version staged until its maintenance window opens. */
  #held: { version: number, nextOpen?: string } | undefined
  #stopping = false

  async start (ctx: PluginContext): Promise<void> {
    this.#stopping = false
    this.#log = ctx.log
    this.#dir = ctx.dataDir
    const w = Number(ctx.config.health_window_ms)
    if (ctx.config.health_window_ms !== undefined && Number.isInteger(w) && w >= 0) this.#defaultWindowMs = w
    this.runtime = new EmsRuntime(ctx.log.child({ component: 'ems.runtime' }))
    // Once per process: an operator may stop and start the plugin again (series stay registered).
    if (ctx.metrics !== undefined && this.#metrics === undefined) {
      this.#metrics = new EmsMetrics(ctx.metrics, () => this.runtime?.stats ?? EMPTY_STATS)
    }
    this.#active = await readSaved(path.join(this.#dir, 'active.json'))
    this.#previous = await readSaved(path.join(this.#dir, 'previous.json'))
    if (this.#active !== undefined) {
      ctx.log.info('Resuming the active EMS config', { version: this.#active.version })
      await this.runtime.apply(this.#active.config, 'immediate')
    }
  }

  async handle (obj: PluginObject): Promise<PluginAnswer> {
    const t0 = performance.now()
    const verdict = await this.#handle(obj)
    if (verdict.state !== 'deferred') this.#metrics?.outcome(verdict, (performance.now() - t0) / 1000, this.#lastRollbackMs)
    return verdict
  }

  async #handle (obj: PluginObject): Promise<PluginAnswer> {
    const rt = this.runtime
    if (rt === undefined) throw new SyncError(SyncErrorCode.UNAVAILABLE, 'The EMS plugin has not started')
    let cfg: EmsConfig
    try {
      cfg = JSON.parse(obj.data.toString('utf8')) as EmsConfig
    } catch {
      return this.#reject('rejected: the config is not JSON')
    }
    this.#trying = typeof cfg.version === 'number' ? cfg.version : undefined
    const problems = validateEmsConfig(cfg)
    if (problems.length > 0) {
      return this.#reject(
        `rejected: invalid config: ${problems
          .slice(0, 3)
          .map((p) => `${p.path} ${p.rule}`)
          .join('; ')}`
      )
    }
    const version = cfg.version ?? 0
    this.#trying = version
    if (this.#active !== undefined && version <= this.#active.version) return { state: 'consumed' } // running it or newer
    // A rollout holding changes for maintenance windows: staged (validated) now, applied in one.
    if ((cfg.apply_windows ?? []).length > 0 && !(await this.#waitForWindow(version, cfg.apply_windows ?? []))) {
      return { state: 'deferred' }
    }
    // Stage, then apply at the next cycle start (or at once) and watch it.
    const appliedAt = rt.stats.cycles
    await rt.apply(cfg)
    const windowMs =
      cfg.core_cycle.health_window_ms ?? this.#defaultWindowMs ?? Math.max(3 * cfg.core_cycle.period_ms, 1500)
    const deadline = Date.now() + windowMs
    // A core cycle that stops completing is a failure too (bounded wait).
    const stallAt = deadline + 10 * cfg.core_cycle.period_ms + 2000
    let stalled = false
    while (Date.now() < deadline || rt.stats.cycles < appliedAt + 2) {
      if (rt.failures.length > 0) break
      if (Date.now() > stallAt) {
        stalled = true
        break
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, cfg.core_cycle.period_ms)))
    }
    if (rt.failures.length > 0 || stalled) {
      const reason = rt.failures[0] ?? 'the core cycle stopped completing'
      const t0 = performance.now()
      if (this.#active !== undefined) {
        await rt.apply(this.#active.config, 'immediate')
        this.#lastRollbackMs = Math.round(performance.now() - t0)
        this.#log?.warn('EMS config failed; rolled back', {
          version,
          to: this.#active.version,
          reason,
          rollbackMs: this.#lastRollbackMs
        })
        return this.#reject(`rolled back to version ${this.#active.version}: ${reason}`)
      }
      rt.stop()
      return this.#reject(`failed with no earlier version to return to (runtime stopped): ${reason}`)
    }
    if (this.#active !== undefined) {
      this.#previous = this.#active
      await writeSaved(path.join(this.#dir, 'previous.json'), this.#previous)
    }
    this.#active = { version, config: cfg }
    await writeSaved(path.join(this.#dir, 'active.json'), this.#active)
    this.#lastError = undefined
    this.#lastApply = { version, at: new Date().toISOString(), outcome: 'applied' }
    this.#log?.info('EMS config committed', { version })
    return { state: 'consumed' }
  }

  /**
   * Waits until one of the windows is open (checked every half second), reported as held; false
   * when the plugin is stopped first (the config is handed over again at the next start).
   */
  async #waitForWindow (version: number, windows: NonNullable<EmsConfig['apply_windows']>): Promise<boolean> {
    const ws = windows.map((w) => ({ cron: w.cron, durationSeconds: w.duration_s, timeZone: w.time_zone }))
    const open = (): boolean => ws.some((w) => { try { return openUntil(w) !== undefined } catch { return true } })
    if (open()) return true
    const next = ws.map((w) => { try { return nextOpen(w) } catch { return undefined } })
      .filter((x): x is number => x !== undefined).sort((a, b) => a - b)[0]
    this.#held = { version, ...(next === undefined ? {} : { nextOpen: new Date(next).toISOString() }) }
    this.#log?.info('EMS config held for its maintenance window', { version, nextOpen: this.#held.nextOpen })
    try {
      while (!open()) {
        if (this.#stopping) return false
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
      return true
    } finally {
      this.#held = undefined
    }
  }

  #reject (message: string): PluginVerdict {
    this.#lastError = message
    this.#lastApply = {
      version: this.#trying,
      at: new Date().toISOString(),
      outcome: message.startsWith('rolled back') ? 'rolled_back' : message.startsWith('rejected') ? 'refused' : 'failed',
      reason: message
    }
    return { state: 'error', message }
  }

  status (): Record<string, unknown> {
    const s = this.runtime?.stats
    return {
      activeVersion: this.#active?.version,
      previousVersion: this.#previous?.version,
      lastError: this.#lastError,
      lastRollbackMs: this.#lastRollbackMs,
      cycles: s?.cycles,
      overruns: s?.overruns,
      lastCycleMs: s?.lastCycleMs,
      activeAlarms: s?.activeAlarms,
      setpoints: s?.setpoints,
      readings: this.runtime === undefined || this.#active === undefined
        ? undefined
        : readingsOf(this.#active.config, this.runtime.values),
      lastApply: this.#lastApply,
      heldForWindow: this.#held,
      // What runs, as a hash the CSS compares with what it published (drift).
      activeHash: this.#active === undefined ? undefined : configHash(this.#active.config)
    }
  }

  interrupt (): void {
    this.#stopping = true
  }

  async stop (): Promise<void> {
    this.#stopping = true
    this.runtime?.stop()
  }
}
