#!/usr/bin/env node
// Builds dist/ only when a source is newer than the last build (npm start then starts in a
// second, not after a 20-second compile every time).
import { spawnSync } from 'node:child_process'
import { chmodSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const stamp = path.join(root, 'dist', '.built')

function newest (p) {
  let s
  try { s = statSync(p) } catch { return 0 }
  if (!s.isDirectory()) return s.mtimeMs
  let n = 0
  for (const e of readdirSync(p)) n = Math.max(n, newest(path.join(p, e)))
  return n
}

const sources = ['src', 'cmd', 'bench', 'harness', 'ui', 'tsconfig.json', 'tsconfig.build.json', 'package.json']
const changed = Math.max(...sources.map((s) => newest(path.join(root, s))))
let built = 0
try { built = statSync(stamp).mtimeMs } catch {}
if (changed > built || process.argv.includes('--force')) {
  process.stderr.write('edgesync: building dist/\n')
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
  const ui = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-ui.mjs')], { stdio: 'inherit' })
  if (ui.status !== 0) process.exit(ui.status ?? 1)
  const v = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-validators.mjs')], { stdio: 'inherit' })
  if (v.status !== 0) process.exit(v.status ?? 1)
  writeFileSync(stamp, new Date().toISOString() + '\n')
}

// The package's executables (npx syncctl, npm link) run the built files directly: tsc writes them
// without the execute bit.
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
for (const bin of Object.values(pkg.bin ?? {})) {
  try { chmodSync(path.join(root, bin), 0o755) } catch {}
}
