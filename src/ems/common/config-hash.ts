/**
 * The hash of an EMS config's content, the same on the CSS (what it published) and the edge (what
 * it runs): SHA-256 of the canonical JSON (sorted keys) without what changes per delivery (the
 * timestamp, apply windows). A difference with the same version is drift: changed on the device.
 */
import { createHash } from 'node:crypto'

function canonical (v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`
  }
  return JSON.stringify(v)
}

export function configHash (config: unknown): string {
  const { timestamp: _t, apply_windows: _w, ...rest } = (config ?? {}) as Record<string, unknown>
  return createHash('sha256').update(canonical(rest)).digest('hex').slice(0, 32)
}
