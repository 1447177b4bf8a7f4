/**
 * Leaf-by-leaf JSON diff, with the paths the EMS service uses (list items by their id, so a
 * controller moved in a list is not a change): the same rules as src/ems/cloud/layers.ts.
 */
type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v)

export function flatten (doc: unknown, path = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  if (isObj(doc)) {
    for (const [k, v] of Object.entries(doc)) flatten(v, `${path}/${k}`, out)
    return out
  }
  if (Array.isArray(doc) && doc.some(isObj)) {
    doc.forEach((v, i) => flatten(v, `${path}/${isObj(v) ? String(v.id ?? v.device_id ?? i) : i}`, out))
    return out
  }
  out[path] = doc
  return out
}

export interface Change { path: string, from?: unknown, to?: unknown }

export function diff (a: unknown, b: unknown): Change[] {
  const fa = flatten(a)
  const fb = flatten(b)
  const paths = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort()
  return paths
    .filter((p) => JSON.stringify(fa[p]) !== JSON.stringify(fb[p]))
    .map((p) => ({ path: p, ...(p in fa ? { from: fa[p] } : {}), ...(p in fb ? { to: fb[p] } : {}) }))
}
