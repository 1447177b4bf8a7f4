/**
 * Finding external binaries (ferretdb, mosquitto, chromium). Missing on a laptop: the test skips
 * with a loud reason. Missing under CI=true: the test fails, because CI installs them.
 */
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
    try { accessSync(p, constants.X_OK); return p } catch {}
  }
  return undefined
}

export interface NeedsBinary {
  pass: (message: string, extra: { skip: string }) => unknown
  fail: (message: string) => unknown
}

/** Returns the path, or skips (laptop) / fails (CI) the test and returns undefined. */
export function requireBinary (t: NeedsBinary, name: string, hint: string): string | undefined {
  const found = findBinary(name)
  if (found !== undefined) return found
  const reason = `${name} not found (${hint})`
  if (process.env.CI === 'true') t.fail(`CI=true but ${reason}`)
  else {
    process.stderr.write(`\n*** SKIPPING: ${reason} ***\n\n`)
    t.pass(`skipped: ${reason}`, { skip: reason })
  }
  return undefined
}
