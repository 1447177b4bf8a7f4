/**
 * The EMS runtime an edge runs: a core cycle every `period_ms` (overruns counted), Modbus TCP
 * devices polled in fast (every cycle) and slow (every 10th cycle) groups, controllers run in
 * `execution_order` writing the battery setpoint, and alarm rules evaluated every cycle. A new
 * config is swapped in at the start of a cycle (or at once), parameters without a restart.
 * Health since the last apply (device or controller failures) decides commit or rollback.
 */
import type { Logger } from '../../common/log.js'
import { ModbusConnection } from './modbus.js'
import { loadProfiles, type DeviceProfile } from '../common/profiles.js'
import type { ApplyMode, EmsConfig } from '../common/schema.js'
import { DeviceError, ValidationError } from '../../common/errors.js'

const SLOW_EVERY = 10

export interface RuntimeStats {
  version?: number
  cycles: number
  overruns: number
  lastCycleMs: number
  deviceErrors: number
  /** Failed polls per device id. */
  deviceErrorsBy: Record<string, number>
  controllerErrors: number
  lastError?: string
  activeAlarms: string[]
  /** The last battery setpoint written, per battery device. */
  setpoints: Record<string, number>
}

interface Device {
  id: string
  unit: number
  profile: DeviceProfile
  conn: ModbusConnection
  fast: string[]
  slow: string[]
}

/** Stats before any cycle ran. */
export function emptyStats (): RuntimeStats {
  return {
    cycles: 0,
    overruns: 0,
    lastCycleMs: 0,
    deviceErrors: 0,
    deviceErrorsBy: {},
    controllerErrors: 0,
    activeAlarms: [],
    setpoints: {}
  }
}

export class EmsRuntime {
  readonly stats: RuntimeStats = emptyStats()

  /** Latest value of every polled channel, by `device/Channel`. */
  readonly values = new Map<string, number>()
  readonly #log: Logger
  readonly #profiles: ReadonlyMap<string, DeviceProfile>
  #config: EmsConfig | undefined
  #devices: Device[] = []
  #pending: { config: EmsConfig; done: () => void } | undefined
  #timer: NodeJS.Timeout | undefined
  #running = false
  #failuresSinceApply: string[] = []
  /** Grows with every swap: a cycle that started on an older config reports nothing. */
  #generation = 0

  constructor (log: Logger, profiles = loadProfiles()) {
    this.#log = log
    this.#profiles = profiles
  }

  get config (): EmsConfig | undefined {
    return this.#config
  }

  /** Failures seen since the last apply (empty: healthy). */
  get failures (): readonly string[] {
    return this.#failuresSinceApply
  }

  /**
   * When a new config should take effect: `core_cycle.apply` for all of it, or per component, in
   * which case it is at once only if every component that changed says immediate.
   */
  whenFor (config: EmsConfig): ApplyMode {
    const a = config.core_cycle.apply
    if (a === undefined || typeof a === 'string') return a ?? 'next_cycle'
    const cur = this.#config
    const changed = (['core_cycle', 'scheduler', 'modbus_devices', 'alarms'] as const).filter(
      (c) => cur === undefined || JSON.stringify(cur[c]) !== JSON.stringify(config[c])
    )
    return changed.every((c) => a[c] === 'immediate') ? 'immediate' : 'next_cycle'
  }

  /** Takes `config` at the start of the next cycle (or at once); resolves once it runs. */
  async apply (config: EmsConfig, when: ApplyMode = this.whenFor(config)): Promise<void> {
    if (when === 'immediate' || this.#timer === undefined) {
      // Immediate (or the first config): the controllers run with the new parameters now, not at
      // the next tick (which may be a long period away); the period restarts from here.
      this.#pending = undefined
      this.#swap(config)
      this.#schedule()
      await this.#cycleNow()
      return
    }
    await new Promise<void>((resolve) => {
      // A stuck cycle must not block a change (least of all a rollback): after a few periods, swap anyway.
      const period = this.#config?.core_cycle.period_ms ?? 1000
      const late = setTimeout(
        () => {
          if (this.#pending?.config === config) {
            this.#pending = undefined
            this.#swap(config)
          }
          resolve()
        },
        3 * period + 100
      )
      this.#pending = {
        config,
        done: () => {
          clearTimeout(late)
          resolve()
        }
      }
    })
  }

  #swap (config: EmsConfig): void {
    this.#generation++
    const periodChanged = this.#config?.core_cycle.period_ms !== config.core_cycle.period_ms
    for (const d of this.#devices) d.conn.close()
    const conns = new Map<string, ModbusConnection>()
    this.#devices = config.modbus_devices.map((d) => {
      const k = `${d.connection.host}:${d.connection.port}`
      let conn = conns.get(k)
      if (conn === undefined) {
        conn = new ModbusConnection(
          d.connection.host,
          d.connection.port,
          d.connection.timeout_ms ?? Math.min(1000, config.core_cycle.period_ms)
        )
        conns.set(k, conn)
      }
      const profile = this.#profiles.get(d.profile) as DeviceProfile
      return {
        id: d.device_id,
        unit: d.connection.unit_id,
        profile,
        conn,
        fast: d.poll_groups?.fast ?? Object.keys(profile.channels),
        slow: d.poll_groups?.slow ?? []
      }
    })
    this.#config = config
    this.values.clear()
    this.#failuresSinceApply = []
    // Alarms belong to the config that raised them: a config rolled back must not leave its
    // device faults reported as active (the next cycle evaluates the new config's alarms).
    this.stats.activeAlarms = []
    if (config.version !== undefined) this.stats.version = config.version
    if (periodChanged) this.#schedule()
    this.#log.info('EMS config running', {
      version: config.version,
      devices: this.#devices.length,
      controllers: config.scheduler.controllers.length
    })
  }

  #schedule (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    const period = this.#config?.core_cycle.period_ms ?? 1000
    this.#timer = setInterval(() => {
      void this.#cycle()
    }, period)
    this.#timer.unref()
  }

  #fail (kind: 'device' | 'controller', message: string): void {
    if (kind === 'device') this.stats.deviceErrors++
    else this.stats.controllerErrors++
    this.stats.lastError = message
    if (this.#failuresSinceApply.length < 20) this.#failuresSinceApply.push(message)
  }

  /** Runs one cycle now; if one is running, one more right after it. */
  async #cycleNow (): Promise<void> {
    while (this.#running) await new Promise((resolve) => setTimeout(resolve, 5))
    await this.#cycle()
  }

  async #cycle (): Promise<void> {
    if (this.#running) {
      this.stats.overruns++
      return
    } // the previous cycle is still running
    this.#running = true
    const t0 = performance.now()
    try {
      if (this.#pending !== undefined) {
        const p = this.#pending
        this.#pending = undefined
        this.#swap(p.config)
        p.done()
      }
      const cfg = this.#config
      if (cfg === undefined) return
      const gen = this.#generation
      const slow = this.stats.cycles % SLOW_EVERY === 0
      const faults: string[] = []
      await Promise.all(
        this.#devices.map(async (d) => {
          for (const ch of slow ? [...d.fast, ...d.slow] : d.fast) {
            const c = d.profile.channels[ch]
            if (c === undefined) continue
            try {
              this.values.set(`${d.id}/${ch}`, await d.conn.read(d.unit, c))
            } catch (err) {
              // An immediate apply swapped the config mid-cycle: this failure is not the new one's.
              if (gen !== this.#generation) return
              this.stats.deviceErrorsBy[d.id] = (this.stats.deviceErrorsBy[d.id] ?? 0) + 1
              this.#fail('device', `device ${d.id}: ${(err as Error).message}`)
              faults.push(d.id)
              return
            }
          }
        })
      )
      // Swapped meanwhile: the old config's controllers and alarms must not run on the new devices.
      if (gen !== this.#generation) return
      await this.#runControllers(cfg)
      if (gen !== this.#generation) return
      this.#evaluateAlarms(cfg, faults)
    } finally {
      this.stats.cycles++
      this.stats.lastCycleMs = Math.round(performance.now() - t0)
      if (this.stats.lastCycleMs > (this.#config?.core_cycle.period_ms ?? Infinity)) this.stats.overruns++
      this.#running = false
    }
  }

  async #runControllers (cfg: EmsConfig): Promise<void> {
    const setpoints = new Map<string, number>()
    // Peak shaving is a cap on what the site draws from the grid, whatever causes it (the house,
    // or another controller charging the battery): the lowest setpoint each battery may get.
    const floors = new Map<string, number>()
    for (const c of [...cfg.scheduler.controllers]
      .filter((x) => x.enabled)
      .sort((a, b) => a.execution_order - b.execution_order)) {
      try {
        const battery =
          c.battery ??
          cfg.modbus_devices.find((d) => this.#profiles.get(d.profile)?.role === 'battery')?.device_id
        const meter = c.meter ?? cfg.modbus_devices.find((d) => d.profile === 'grid_meter')?.device_id
        if (battery === undefined || meter === undefined) {
          throw new ValidationError('needs a battery and a grid meter')
        }
        const grid = this.values.get(`${meter}/ActivePower`)
        const batt = this.values.get(`${battery}/ActivePower`) ?? 0
        if (grid === undefined) throw new DeviceError(`no reading of ${meter}/ActivePower`)
        const current = setpoints.get(battery) ?? batt
        const p = c.parameters as {
          target_grid_power?: number
          threshold_watts?: number
          recharge_enabled?: boolean
          recharge_below_watts?: number
        }
        let next = current
        if (c.class === 'BalancingController') {
          next = batt + grid - (p.target_grid_power ?? 0) // discharge what the site imports beyond the target
        } else {
          const threshold = p.threshold_watts ?? Infinity
          const siteLoad = grid + batt // what the grid would carry without the battery
          // Grid import is siteLoad - setpoint (discharge positive): keep it at most the threshold.
          const floor = siteLoad - threshold
          floors.set(battery, Math.max(floors.get(battery) ?? -Infinity, floor))
          if (siteLoad > threshold) next = Math.max(current, floor)
          else if (p.recharge_enabled === true && siteLoad < (p.recharge_below_watts ?? threshold)) {
            next = Math.min(current, siteLoad - (p.recharge_below_watts ?? threshold))
          }
        }
        setpoints.set(battery, Math.round(next))
      } catch (err) {
        this.#fail('controller', `controller ${c.id}: ${(err as Error).message}`)
      }
    }
    for (const [battery, floor] of floors) {
      setpoints.set(battery, Math.round(Math.max(setpoints.get(battery) ?? -Infinity, floor)))
    }
    for (const [battery, value] of setpoints) {
      const d = this.#devices.find((x) => x.id === battery)
      const ch = d?.profile.channels.SetPower
      if (d === undefined || ch === undefined) continue
      try {
        await d.conn.write(d.unit, ch, value)
        this.stats.setpoints[battery] = value
      } catch (err) {
        this.#fail('device', `device ${battery}: setpoint not written: ${(err as Error).message}`)
      }
    }
  }

  /** The config's alarm rules, plus `device_fault:<id>` for each device that failed this cycle. */
  #evaluateAlarms (cfg: EmsConfig, faults: readonly string[]): void {
    const active: string[] = faults.map((id) => `device_fault:${id}`)
    for (const a of cfg.alarms) {
      const v = this.values.get(a.channel)
      if (v === undefined) continue
      const on =
        a.condition === '<'
          ? v < a.threshold
          : a.condition === '<='
            ? v <= a.threshold
            : a.condition === '>'
              ? v > a.threshold
              : a.condition === '>='
                ? v >= a.threshold
                : a.condition === '=='
                  ? v === a.threshold
                  : v !== a.threshold
      if (on) active.push(a.id)
    }
    const raised = active.filter((a) => !this.stats.activeAlarms.includes(a))
    if (raised.length > 0) this.#log.warn('EMS alarms raised', { alarms: raised })
    this.stats.activeAlarms = active
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    for (const d of this.#devices) d.conn.close()
    this.#pending?.done()
  }
}
