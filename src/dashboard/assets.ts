/**
 * The dashboard's built files (dist/ui, written by `npm run build`), read once into memory: a
 * fixed list served by name, so no request path ever reaches the file system.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { ConfigError, SyncErrorCode } from '../common/errors.js'

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png'
}

export interface Asset { body: Buffer, type: string, etag: string }

/** The package root: the nearest folder above this file with our package.json (source or dist). */
function packageRoot (): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pkg = path.join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'edgesync') return dir
    const up = path.dirname(dir)
    if (up === dir) throw new ConfigError(SyncErrorCode.CONFIG_INVALID, 'Cannot find the edgesync package root')
    dir = up
  }
}

function walk (dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = path.join(dir, e)
    return statSync(p).isDirectory() ? walk(p, base) : [path.relative(base, p).split(path.sep).join('/')]
  })
}

/** Every built file by its path under /ui/assets/ (empty when the dashboard was not built). */
export function loadAssets (): Map<string, Asset> {
  const dir = path.join(packageRoot(), 'dist', 'ui')
  const out = new Map<string, Asset>()
  if (!existsSync(dir)) return out
  for (const rel of walk(dir)) {
    const type = TYPES[path.extname(rel)]
    if (type === undefined || rel.endsWith('.map')) continue
    const body = readFileSync(path.join(dir, rel))
    out.set(rel, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` })
  }
  return out
}
