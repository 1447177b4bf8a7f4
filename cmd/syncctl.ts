#!/usr/bin/env node
// syncctl: see `syncctl --help` for commands and exit codes.
import './compile-cache.js'
// The rest loads after the cache is on: static imports would be compiled before any module runs.

const { createProgram } = await import('../src/admin/program.js')

// `syncctl ... | head`: a reader that stops early is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0)
  throw err
})
const json = process.argv.includes('--json')
/** The code of an error the CLI found itself (the CSS's errors carry their own). */
const BY_EXIT: Record<number, string> = {
  2: 'SYNC_ERR_USAGE', 3: 'SYNC_ERR_NOT_FOUND', 4: 'SYNC_ERR_FORBIDDEN', 5: 'SYNC_ERR_REJECTED', 6: 'SYNC_ERR_UNAVAILABLE'
}
const program = createProgram({
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  fetch,
  env: process.env
})
try {
  await program.parseAsync(process.argv)
} catch (err) {
  const e = err as { exitCode?: number; code?: string; message?: string; details?: unknown }
  const usage = typeof e.code === 'string' && e.code.startsWith('commander.')
  const exitCode = usage ? (e.exitCode === 0 ? 0 : 2) : (e.exitCode ?? 1)
  if (json && exitCode !== 0) {
    // Scripts asked for JSON: the error is JSON too (on stderr, so stdout stays parseable).
    const code = usage ? 'SYNC_ERR_USAGE' : (e.code ?? BY_EXIT[exitCode] ?? 'SYNC_ERR_INTERNAL')
    const error = {
      code,
      message: e.message ?? String(err),
      exitCode,
      ...(e.details === undefined ? {} : { details: e.details })
    }
    process.stderr.write(JSON.stringify({ error }) + '\n')
  } else if (!usage) {
    // commander printed its own usage messages already.
    console.error(`syncctl: ${e.message ?? String(err)}`)
  }
  process.exit(exitCode)
}
