/**
 * Finding external binaries (ferretdb, mosquitto, chromium). Missing on a laptop: the test skips
 * with a loud reason. Missing under CI=true: the test fails, because CI installs them.
 */
import { findBinary } from '../../harness/find-binary.js'

export { findBinary }

export interface NeedsBinary {
  pass: (message: string, extra: { skip: string }) => unknown
  fail: (message: string) => unknown
}

/** Returns the path, or skips (laptop) / fails (CI) the test and returns undefined. */
export function requireBinary (t: NeedsBinary, name: string, hint: string): string | undefined {
  const found = findBinary(name)
  if (found !== undefined) return found
  skipOrFail(t, `${name} not found (${hint})`)
  return undefined
}

/** A capability the machine lacks: a loud skip on a laptop, a failure under CI=true. */
export function skipOrFail (t: NeedsBinary, reason: string): void {
  if (process.env.CI === 'true') t.fail(`CI=true but ${reason}`)
  else {
    process.stderr.write(`\n*** SKIPPING: ${reason} ***\n\n`)
    t.pass(`skipped: ${reason}`, { skip: reason })
  }
}
