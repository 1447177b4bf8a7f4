#!/usr/bin/env node
// syncctl: see `syncctl --help` for commands and exit codes.
import { createProgram } from '../src/admin/program.js'

const program = createProgram({
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  fetch,
  env: process.env
})
try {
  await program.parseAsync(process.argv)
} catch (err) {
  const e = err as { exitCode?: number; code?: string; message?: string }
  if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
    // commander already printed its message; usage errors exit 2 as documented.
    process.exit(e.exitCode === 0 ? 0 : 2)
  }
  console.error(`syncctl: ${e.message ?? String(err)}`)
  process.exit(e.exitCode ?? 1)
}
