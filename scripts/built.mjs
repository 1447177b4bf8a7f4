#!/usr/bin/env node
// Builds dist/ only when a source is newer than the last build (npm start then starts in a
// second, not after a 20-second compile every time).
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
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

const sources = ['src', 'cmd', 'bench', 'harness', 'tsconfig.json', 'tsconfig.build.json', 'package.json']
const changed = Math.max(...sources.map((s) => newest(path.join(root, s))))
let built = 0
try { built = statSync(stamp).mtimeMs } catch {}
if (changed > built) {
  process.stderr.write('edgesync: building dist/ (sources changed since the last build)\n')
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
  if (r.status !== 0) process.exit(r.status ?? 1)
  writeFileSync(stamp, new Date().toISOString() + '\n')
}
