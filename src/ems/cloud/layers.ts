/**
 * Effective configuration: org defaults, then the site's overrides, then the edge's exceptions.
 * Objects merge key by key; the lists of controllers, devices and alarms merge item by item by
 * their id (an item `{ "id": ..., "_remove": true }` drops an inherited one). Provenance records
 * which layer set each value, by a path that uses ids for list items
 * (`/scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts`).
 */
import { ValidationError } from '../../common/errors.js'

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Obj = Record<string, Json>

/** List fields merged by item id, and the id field of their items. */
const KEYED: Readonly<Record<string, string>> = {
  controllers: 'id',
  modbus_devices: 'device_id',
  alarms: 'id'
}

export interface Layer {
  name: string
  doc: Obj
}
export interface Effective {
  config: Obj
  provenance: Record<string, string>
}

function isObj (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function record (value: Json, path: string, layer: string, prov: Record<string, string>): void {
  if (isObj(value)) {
    for (const [k, v] of Object.entries(value)) record(v, `${path}/${k}`, layer, prov)
    return
  }
  if (Array.isArray(value) && value.some(isObj)) {
    value.forEach((v, i) => {
      record(v, `${path}/${isObj(v) ? String(v.id ?? v.device_id ?? i) : i}`, layer, prov)
    })
    return
  }
  prov[path] = layer
}

function dropProvenance (prov: Record<string, string>, prefix: string): void {
  for (const k of Object.keys(prov)) {
    if (k === prefix || k.startsWith(`${prefix}/`)) Reflect.deleteProperty(prov, k)
  }
}

function mergeInto (target: Obj, src: Obj, layer: string, path: string, prov: Record<string, string>): void {
  for (const [key, value] of Object.entries(src)) {
    const at = `${path}/${key}`
    const idField = KEYED[key]
    if (idField !== undefined && Array.isArray(value)) {
      const list = Array.isArray(target[key]) ? target[key] : []
      target[key] = list
      for (const item of value) {
        if (!isObj(item) || typeof item[idField] !== 'string') continue
        const itemId = item[idField]
        const itemPath = `${at}/${itemId}`
        const i = list.findIndex((x) => isObj(x) && x[idField] === itemId)
        if (item._remove === true) {
          if (i >= 0) list.splice(i, 1)
          dropProvenance(prov, itemPath)
          continue
        }
        if (i >= 0 && isObj(list[i])) mergeInto(list[i], item, layer, itemPath, prov)
        else {
          list.push(structuredClone(item))
          record(item, itemPath, layer, prov)
        }
      }
    } else if (isObj(value) && isObj(target[key])) {
      mergeInto(target[key], value, layer, at, prov)
    } else {
      dropProvenance(prov, at)
      target[key] = structuredClone(value)
      record(value, at, layer, prov)
    }
  }
}

export function mergeLayers (layers: readonly Layer[]): Effective {
  const config: Obj = {}
  const provenance: Record<string, string> = {}
  for (const l of layers) mergeInto(config, l.doc, l.name, '', provenance)
  return { config, provenance }
}

/** Leaf values by keyed path (the same paths provenance uses). */
export function flatten (doc: Json, path = '', out: Record<string, Json> = {}): Record<string, Json> {
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

export interface Change {
  path: string
  from?: Json
  to?: Json
}

/** What changed from `a` to `b`, leaf by leaf. */
export function diff (a: Json, b: Json): Change[] {
  const fa = flatten(a)
  const fb = flatten(b)
  const out: Change[] = []
  for (const p of new Set([...Object.keys(fa), ...Object.keys(fb)])) {
    if (JSON.stringify(fa[p]) === JSON.stringify(fb[p])) continue
    out.push({ path: p, ...(p in fa ? { from: fa[p] } : {}), ...(p in fb ? { to: fb[p] } : {}) })
  }
  return out.sort((x, y) => (x.path < y.path ? -1 : 1))
}

/** Sets a value at a keyed path in a layer document (for bulk changes), creating what is missing. */
export function setPath (doc: Obj, path: string, value: Json): void {
  const parts = path.split('/').filter((p) => p !== '')
  let cur: Obj = doc
  for (let i = 0; i < parts.length - 1; i++) {
    const key = parts[i] ?? ''
    const idField = KEYED[key]
    if (idField !== undefined) {
      const itemId = parts[++i] ?? ''
      const list = Array.isArray(cur[key]) ? cur[key] : (cur[key] = [])
      let item = list.find((x) => isObj(x) && x[idField] === itemId) as Obj | undefined
      if (item === undefined) {
        item = { [idField]: itemId }
        list.push(item)
      }
      if (i === parts.length - 1) throw new ValidationError(`${path} names a list item, not a value`)
      cur = item
      continue
    }
    if (!isObj(cur[key])) cur[key] = {}
    cur = cur[key] as Obj
  }
  const last = parts.at(-1)
  if (last === undefined) throw new ValidationError('Empty path')
  cur[last] = value
}
