/**
 * Any object as a rollout: a new instance (`meta` and base64 `data`) for the nodes of one
 * destination type (all of them, a site, a selector, or a list), sent in waves. The first wave
 * writes the instance addressed to that wave's nodes; each later wave adds its nodes to the
 * instance's destination list (the broker fans the new instance out to all listed nodes). Abort
 * restores the instance the object had before the rollout (or deletes an object the rollout
 * created), which the nodes already reached receive as a new instance.
 */
import { createHash } from 'node:crypto'
import { ValidationError } from '../../common/errors.js'
import type { ObjectKey } from '../../common/model.js'
import type { Store } from '../../storage/index.js'
import type { ObjectService } from '../objects.js'
import type { RolloutDriver, SentEdge } from './model.js'

export interface ObjectChange {
  objectType: string
  objectID: string
  destinationType: string
  site?: string
  selector?: Record<string, string>
  edges?: string[]
  meta?: Record<string, unknown>
  /** base64 */
  data: string
}

function check (c: unknown): ObjectChange {
  const x = (typeof c === 'object' && c !== null ? c : {}) as Partial<ObjectChange>
  for (const k of ['objectType', 'objectID', 'destinationType', 'data'] as const) {
    if (typeof x[k] !== 'string' || x[k] === '') throw new ValidationError(`object: ${k} is required`)
  }
  return x as ObjectChange
}

export function objectRolloutDriver (store: Store, objects: ObjectService): RolloutDriver {
  const keyOf = (orgId: string, c: ObjectChange): ObjectKey => ({
    orgId,
    objectType: c.objectType,
    objectId: c.objectID
  })
  const hashOf = (c: ObjectChange): string =>
    createHash('sha256').update(Buffer.from(c.data, 'base64')).digest('hex')
  /** The newest instance from before the rollout (one whose data is not the new data). */
  const before = async (key: ObjectKey, hash: string): Promise<number | undefined> =>
    (await store.objects.history(key)).find((o) => o.meta.dataHash !== hash && o.meta.deleted !== true)?.meta
      .instanceID
  return {
    plan: async (orgId, change) => {
      const c = check(change)
      const edges: Array<{ edge: string; destinationType: string }> = []
      let cursor: string | undefined
      do {
        const page = await store.nodes.list({
          orgId,
          destinationType: c.destinationType,
          ...(c.site === undefined ? {} : { properties: { site: c.site, ...(c.selector ?? {}) } }),
          ...(c.site === undefined && c.selector !== undefined ? { properties: c.selector } : {}),
          limit: 1000,
          ...(cursor === undefined ? {} : { cursor })
        })
        for (const n of page.items) {
          if (c.edges !== undefined && !c.edges.includes(n.destinationId)) continue
          edges.push({ edge: n.destinationId, destinationType: n.destinationType })
        }
        cursor = page.next
      } while (cursor !== undefined)
      return { edges, skipped: [] }
    },
    send: async (orgId, change, edges, opts) => {
      const c = check(change)
      const key = keyOf(orgId, c)
      const hash = hashOf(c)
      const cur = await store.objects.get(key)
      const from = await before(key, hash)
      const dests = edges.map((e) => `${c.destinationType}:${e}`)
      const obj =
        cur !== undefined && cur.meta.deleted !== true && cur.meta.dataHash === hash
          ? await objects.setDestinations(key, (list) => [...new Set([...list, ...dests])])
          : await objects.put(
            key,
            { ...(c.meta ?? {}), objectID: c.objectID, objectType: c.objectType, destinationsList: dests },
            Buffer.from(c.data, 'base64'),
            opts.actor
          )
      const out = new Map<string, SentEdge>()
      for (const e of edges) {
        out.set(e, {
          key,
          instanceId: obj.meta.instanceID,
          to: obj.meta.instanceID,
          ...(from === undefined ? {} : { from })
        })
      }
      return out
    },
    revert: async (orgId, change, edges) => {
      const c = check(change)
      const key = keyOf(orgId, c)
      const from = await before(key, hashOf(c))
      const out = new Map<string, { to?: number; error?: string }>()
      try {
        if (from === undefined) {
          await objects.delete(key)
          for (const { edge } of edges) out.set(edge, {})
        } else {
          const restored = await objects.restore(key, from)
          for (const { edge } of edges) out.set(edge, { to: restored.meta.instanceID })
        }
      } catch (err) {
        for (const { edge } of edges) out.set(edge, { error: (err as Error).message })
      }
      return out
    },
    finish: async () => {}
  }
}
