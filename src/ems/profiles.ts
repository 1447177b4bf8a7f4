/** Device profiles (register maps) from conf/profiles/*.json, read once and validated. */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError, SyncErrorCode } from '../common/errors.js'

export interface Channel { address: number, type: 'int16' | 'uint16' | 'int32' | 'uint32', scale?: number, unit?: string, min?: number, max?: number, writable?: boolean }
export interface DeviceProfile { id: string, description: string, role: 'meter' | 'producer' | 'battery', channels: Record<string, Channel> }

/** conf/profiles beside src/ (from source) or beside dist/ (built). */
function profilesDir (): string {
  const here = path.dirname(fileURLToPath(import.meta.url))
  for (const up of ['../../conf/profiles', '../../../conf/profiles']) {
    const dir = path.resolve(here, up)
    try { readdirSync(dir); return dir } catch {}
  }
  throw new ConfigError(SyncErrorCode.CONFIG_INVALID, 'conf/profiles not found next to the installed package')
}

let cache: ReadonlyMap<string, DeviceProfile> | undefined

export function loadProfiles (dir = profilesDir()): ReadonlyMap<string, DeviceProfile> {
  if (cache !== undefined && dir === profilesDir()) return cache
  const out = new Map<string, DeviceProfile>()
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    const p = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as DeviceProfile
    if (typeof p.id !== 'string' || typeof p.channels !== 'object') throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `Profile ${f}: needs id and channels`)
    out.set(p.id, p)
  }
  cache = out
  return out
}

/** Registers a channel occupies (16-bit words). */
export function channelWords (c: Channel): number { return c.type.endsWith('32') ? 2 : 1 }
