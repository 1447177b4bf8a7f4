#!/usr/bin/env node
// Builds the dashboard into dist/ui: ui/src (TypeScript + JSX, compiled by tsc to ES modules),
// ui/static (page styles), and Preact's ES module files (served under /ui/assets/vendor: the page
// loads nothing from outside the service).
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.join(root, 'dist', 'ui')
rmSync(out, { recursive: true, force: true })
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'ui', 'tsconfig.json')], { stdio: 'inherit' })
if (r.status !== 0) process.exit(r.status ?? 1)
for (const f of readdirSync(path.join(root, 'ui', 'static'))) copyFileSync(path.join(root, 'ui', 'static', f), path.join(out, f))
mkdirSync(path.join(out, 'vendor'), { recursive: true })
const preact = path.join(root, 'node_modules', 'preact')
copyFileSync(path.join(preact, 'dist', 'preact.module.js'), path.join(out, 'vendor', 'preact.mjs'))
copyFileSync(path.join(preact, 'hooks', 'dist', 'hooks.module.js'), path.join(out, 'vendor', 'hooks.mjs'))
copyFileSync(path.join(preact, 'jsx-runtime', 'dist', 'jsxRuntime.module.js'), path.join(out, 'vendor', 'jsx-runtime.mjs'))
