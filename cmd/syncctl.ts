#!/usr/bin/env node
import { createProgram } from '../src/admin/program.js'

const program = createProgram({ stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s), fetch, env: process.env })
try {
  await program.parseAsync(process.argv)
} catch (err) {
  const code = (err as { exitCode?: number }).exitCode
  if (code !== undefined) process.exit(code)
  console.error(err instanceof Error ? err.message : String(err))
  process.exit(1)
}
