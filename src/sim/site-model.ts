/**
 * The physics of one simulated energy site: two PV arrays and a household load following daily
 * curves with noise, a battery whose power follows the setpoint the EMS writes (within its power
 * and state-of-charge limits), and the grid meter closing the balance. Pure and deterministic for
 * a seed, so tests can check it without sockets.
 */

export interface SiteSpec {
  /** Peak power of the two PV arrays (W): west-facing peaks in the afternoon, east-facing in the morning. */
  pvPeaks: [number, number]
  /** Household base load (W); morning and evening peaks come on top. */
  baseLoad: number
  batteryCapacityWh: number
  batteryMaxW: number
  /** State of charge at the start (%). */
  initialSoc: number
}

export const DEFAULT_SITE: SiteSpec = {
  pvPeaks: [3000, 2000],
  baseLoad: 500,
  batteryCapacityWh: 10_000,
  batteryMaxW: 5000,
  initialSoc: 60
}

export interface SiteReadings {
  pvWest: number
  pvEast: number
  consumption: number
  /** Battery power: > 0 discharges, < 0 charges. */
  battery: number
  /** Grid power at the connection point: > 0 imports, < 0 exports. */
  grid: number
  soc: number
  energy: { pvWest: number; pvEast: number; consumption: number; gridImport: number; gridExport: number }
}

/** A small seeded generator (mulberry32): every edge gets its own weather and habits. */
function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Sun on an array facing east (peak at 11:00) or west (peak at 14:00), 0 at night. */
export function solarShape (hour: number, peakHour: number): number {
  const x = (hour - peakHour) / 4.5
  return hour < 6 || hour > 20 ? 0 : Math.max(0, Math.cos((x * Math.PI) / 2)) ** 2
}

/** Household demand as a multiple of the base load: a morning and a larger evening bump. */
export function loadShape (hour: number): number {
  const bump = (centre: number, width: number, height: number): number =>
    height * Math.exp(-(((hour - centre) / width) ** 2))
  return 1 + bump(7.5, 1.2, 0.8) + bump(19, 2, 1.6)
}

export class SiteModel {
  readonly spec: SiteSpec
  readonly #rand: () => number
  #soc: number
  #cloud = 1
  #setpoint = 0
  #battery = 0
  /** PowerLimit of each PV inverter (% of its peak), as the EMS wrote it. */
  readonly #pvLimit: [number, number] = [100, 100]
  readonly #energy = { pvWest: 0, pvEast: 0, consumption: 0, gridImport: 0, gridExport: 0 }

  constructor (spec: SiteSpec = DEFAULT_SITE, seed = 1) {
    this.spec = spec
    this.#rand = random(seed)
    this.#soc = spec.initialSoc
  }

  /** The battery setpoint the EMS wrote (W, > 0 discharge). */
  setBatterySetpoint (watts: number): void {
    this.#setpoint = watts
  }

  /** An inverter's PowerLimit (0-100 % of its peak): production above it is curtailed. */
  setPvLimit (array: 0 | 1, percent: number): void {
    this.#pvLimit[array] = Math.min(100, Math.max(0, percent))
  }

  /** Advances the site by `dtSeconds` of simulated time ending at `hour` (0-24, local). */
  step (hour: number, dtSeconds: number): SiteReadings {
    const noise = (amount: number): number => (this.#rand() * 2 - 1) * amount
    // Clouds drift slowly between 0.5 and 1; both arrays see the same sky.
    this.#cloud = Math.min(1, Math.max(0.5, this.#cloud + noise(0.02)))
    const cap = (i: 0 | 1): number => (this.spec.pvPeaks[i] * this.#pvLimit[i]) / 100
    const pvWest = Math.round(Math.min(cap(0), this.spec.pvPeaks[0] * solarShape(hour, 14) * this.#cloud))
    const pvEast = Math.round(Math.min(cap(1), this.spec.pvPeaks[1] * solarShape(hour, 11) * this.#cloud))
    const consumption = Math.max(0, Math.round(this.spec.baseLoad * loadShape(hour) + noise(50)))
    const s = this.spec
    let battery = Math.max(-s.batteryMaxW, Math.min(s.batteryMaxW, this.#setpoint))
    if (battery > 0 && this.#soc <= 5) battery = 0 // the BMS stops discharging an empty battery
    if (battery < 0 && this.#soc >= 100) battery = 0
    this.#battery = Math.round(battery)
    this.#soc = Math.min(
      100,
      Math.max(0, this.#soc - ((this.#battery * dtSeconds) / 3600 / s.batteryCapacityWh) * 100)
    )
    const grid = consumption - pvWest - pvEast - this.#battery
    const wh = dtSeconds / 3600
    this.#energy.pvWest += pvWest * wh
    this.#energy.pvEast += pvEast * wh
    this.#energy.consumption += consumption * wh
    if (grid > 0) this.#energy.gridImport += grid * wh
    else this.#energy.gridExport -= grid * wh
    return {
      pvWest,
      pvEast,
      consumption,
      battery: this.#battery,
      grid,
      soc: this.#soc,
      energy: { ...this.#energy }
    }
  }
}
