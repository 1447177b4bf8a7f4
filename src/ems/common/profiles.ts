/** Device profiles (register maps) from conf/profiles/*.json, read once and validated. */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, SyncErrorCode } from '../../common/errors.js'

export interface Channel {
  address: number
  type: 'int16' | 'uint16' | 'int32' | 'uint32'
  scale?: number
  unit?: string
  min?: number
  max?: number
  writable?: boolean
}
export interface DeviceProfile {
  id: string
  description: string
  role: 'meter' | 'producer' | 'battery'
  channels: Record<string, Channel>
}

/** conf/profiles beside src/ (from source) or beside dist/ (built). */
function profilesDir (): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  for (const up of ['../../../conf/profiles', '../../../../conf/profiles']) {
    const dir = path.resolve(here, up)
    try {
      readdirSync(dir)
      return dir
    } catch {}
  }
  throw new ConfigError(SyncErrorCode.CONFIG_INVALID, 'conf/profiles not found next to the installed package')
}

const cache = new Map<string, ReadonlyMap<string, DeviceProfile>>()

/** The profiles of `dir` (default: the package's conf/profiles), read once per process. */
export function loadProfiles (dir?: string): ReadonlyMap<string, DeviceProfile> {
  const key = dir ?? ''
  const hit = cache.get(key)
  if (hit !== undefined) return hit
  const from = dir ?? profilesDir()
  const out = new Map<string, DeviceProfile>()
  for (const f of readdirSync(from)
    .filter((n) => n.endsWith('.json'))
    .sort()) {
    const p = JSON.parse(readFileSync(path.join(from, f), 'utf8')) as DeviceProfile
    if (typeof p.id !== 'string' || typeof p.channels !== 'object') {
      throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `Profile ${f}: needs id and channels`)
    }
    out.set(p.id, p)
  }
  cache.set(key, out)
  return out
}

/** Registers a channel occupies (16-bit words). */
export function channelWords (c: Channel): number {
  return c.type.endsWith('32') ? 2 : 1
}
