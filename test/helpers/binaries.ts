/**
 * External binaries the tests need (mosquitto, ferretdb, schemathesis's st, mount). Missing on a
 * laptop: the test skips with a loud reason. Missing under CI=true: the test fails, because CI
 * installs them. This is the only skip in the suite.
 */
import { findBinary } from '../../harness/find-binary.js'
import { findPostgres } from '../../harness/postgres.js'

export { findBinary }

export interface NeedsBinary {
  pass: (message: string, extra: { skip: string }) => unknown
  fail: (message: string) => unknown
}

/** Returns the path, or skips (laptop) / fails (CI) the test and returns undefined. */
export function requireBinary (t: NeedsBinary, name: string, hint: string): string | undefined {
  const found = name === 'postgres' ? findPostgres() : findBinary(name)
  if (found !== undefined) return found
  const reason = `${name} not found (${hint})`
  if (process.env.CI === 'true') {
    t.fail(`CI=true but ${reason}`)
  } else {
    process.stderr.write(`\n*** SKIPPING: ${reason} ***\n\n`)
    t.pass(`skipped: ${reason}`, { skip: reason })
  }
  return undefined
}
