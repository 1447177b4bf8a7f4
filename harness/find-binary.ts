/** Where external binaries (ferretdb, mosquitto) are looked for: SYNC_TOOLS_DIR, the CI cache, PATH. */
import { accessSync, constants } from 'node:fs'
import { homedir } from 'node:os'
import path from 'node:path'

const SEARCH = [
  process.env.SYNC_TOOLS_DIR,
  path.join(homedir(), '.cache', 'edgesync', 'bin'),
  ...(process.env.PATH ?? '').split(':'),
  '/usr/sbin',
  '/usr/bin'
].filter((p): p is string => p !== undefined && p !== '')

export function findBinary (name: string): string | undefined {
  for (const dir of SEARCH) {
    const p = path.join(dir, name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {}
  }
  return undefined
}
