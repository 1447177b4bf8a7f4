/**
 * Maintenance windows: a cron expression (5 fields, or 6 with seconds first), a duration and a
 * time zone, for a site or a selector. A window is open at `t` when the expression matched a
 * moment within the last `durationSeconds`. Matching runs on the zone's wall clock; the zone's
 * offset is taken at `t` (a window spanning a DST change is off by that change).
 */
import { ValidationError } from './errors.js'

export interface MaintenanceWindow {
  name: string
  cron: string
  durationSeconds: number
  timeZone: string
  site?: string
  selector?: Record<string, string>
}

interface Field { min: number, max: number }
const FIELDS: Field[] = [
  { min: 0, max: 59 }, // second
  { min: 0, max: 59 }, // minute
  { min: 0, max: 23 }, // hour
  { min: 1, max: 31 }, // day of month
  { min: 1, max: 12 }, // month
  { min: 0, max: 6 } // day of week (0 = Sunday; 7 accepted as Sunday)
]

/** A parsed expression: for each field, the values it matches. */
export type Cron = Array<Set<number>>

function parseField (text: string, f: Field, name: string): Set<number> {
  const out = new Set<number>()
  for (const part of text.split(',')) {
    const m = /^(\*|\d+(?:-\d+)?)(?:\/(\d+))?$/.exec(part)
    if (m === null) throw new ValidationError(`cron: cannot read ${name} "${part}"`)
    const [, range = '*', stepText] = m
    const step = stepText === undefined ? 1 : Number(stepText)
    let [lo, hi] = range === '*' ? [f.min, f.max] : range.split('-').map(Number) as [number, number?]
    hi ??= stepText === undefined ? lo : f.max
    if (lo < f.min || hi > f.max + (name === 'day of week' ? 1 : 0) || lo > hi || step < 1) {
      throw new ValidationError(`cron: ${name} "${part}" is out of ${f.min}-${f.max}`)
    }
    for (let v = lo; v <= hi; v += step) out.add(name === 'day of week' && v === 7 ? 0 : v)
  }
  return out
}

export function parseCron (expr: string): Cron {
  const parts = expr.trim().split(/\s+/)
  if (parts.length !== 5 && parts.length !== 6) {
    throw new ValidationError('cron: give 5 fields (minute hour day month weekday) or 6 (with seconds first)')
  }
  const all = parts.length === 5 ? ['0', ...parts] : parts
  const names = ['second', 'minute', 'hour', 'day of month', 'month', 'day of week']
  return all.map((p, i) => parseField(p, FIELDS[i] as Field, names[i] ?? ''))
}

/** The zone's offset from UTC at `t`, in ms (wall clock = UTC + offset). */
function offsetMs (t: number, timeZone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric'
  }).formatToParts(new Date(t))
  const v = (k: string): number => Number(parts.find((p) => p.type === k)?.value ?? 0)
  const wall = Date.UTC(v('year'), v('month') - 1, v('day'), v('hour'), v('minute'), v('second'))
  return wall - Math.floor(t / 1000) * 1000
}

export function checkTimeZone (timeZone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone }).format(0)
  } catch {
    throw new ValidationError(`timeZone: unknown time zone ${timeZone}`)
  }
}

function matches (cron: Cron, wall: Date): boolean {
  return (cron[0]?.has(wall.getUTCSeconds()) ?? false) && (cron[1]?.has(wall.getUTCMinutes()) ?? false) &&
    (cron[2]?.has(wall.getUTCHours()) ?? false) && (cron[3]?.has(wall.getUTCDate()) ?? false) &&
    (cron[4]?.has(wall.getUTCMonth() + 1) ?? false) && (cron[5]?.has(wall.getUTCDay()) ?? false)
}

/** Whether the window is open at `t`, and until when (epoch ms) if it is. */
export function openUntil (w: Pick<MaintenanceWindow, 'cron' | 'durationSeconds' | 'timeZone'>, t = Date.now()): number | undefined {
  const cron = parseCron(w.cron)
  const off = offsetMs(t, w.timeZone)
  const now = Math.floor(t / 1000) * 1000
  // Whole minutes are skipped when the seconds field cannot match their start: a five-field
  // expression over a day is 1,440 checks, not 86,400.
  for (let s = now; s > now - w.durationSeconds * 1000; s -= 1000) {
    const wall = new Date(s + off)
    if (!(cron[1]?.has(wall.getUTCMinutes()) ?? false) || !(cron[2]?.has(wall.getUTCHours()) ?? false)) {
      s -= wall.getUTCSeconds() * 1000 // to this minute's first second; the loop steps past it
      continue
    }
    if (matches(cron, wall)) return s + w.durationSeconds * 1000
  }
  return undefined
}

/** When the window next opens after `t` (epoch ms), looking up to `horizonDays` ahead. */
export function nextOpen (w: Pick<MaintenanceWindow, 'cron' | 'timeZone'>, t = Date.now(), horizonDays = 8): number | undefined {
  const cron = parseCron(w.cron)
  const off = offsetMs(t, w.timeZone)
  const start = Math.floor(t / 1000) * 1000 + 1000
  for (let s = start; s < start + horizonDays * 86_400_000; s += 1000) {
    const wall = new Date(s + off)
    if (!(cron[1]?.has(wall.getUTCMinutes()) ?? false) || !(cron[2]?.has(wall.getUTCHours()) ?? false)) {
      s += (59 - wall.getUTCSeconds()) * 1000
      continue
    }
    if (matches(cron, wall)) return s
  }
  return undefined
}

/** The windows that apply to an edge with these properties. */
export function windowsFor (all: MaintenanceWindow[], properties: Record<string, string>): MaintenanceWindow[] {
  return all.filter((w) =>
    (w.site === undefined || properties.site === w.site) &&
    Object.entries(w.selector ?? {}).every(([k, v]) => properties[k] === v))
}
