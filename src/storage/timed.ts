/**
 * A store whose every asynchronous method is timed: one histogram observation per call, labelled by
 * backend and `part.method` (a fixed, small set of names).
 */
import type { Histogram } from '../common/metrics.js'
import type { Store } from './types.js'

const PARTS = ['objects', 'blobs', 'deliveries', 'nodes', 'users', 'audit', 'webhooks'] as const

function timedPart<T extends object> (target: T, part: string, backend: string, h: Histogram): T {
  return new Proxy(target, {
    get (obj, prop, receiver) {
      const v: unknown = Reflect.get(obj, prop, receiver)
      if (typeof v !== 'function') return v
      const operation = `${part}.${String(prop)}`
      return (...args: unknown[]) => {
        const started = performance.now()
        const r: unknown = (v as (...a: unknown[]) => unknown).apply(obj, args)
        if (!(r instanceof Promise)) return r
        const done = (): void => {
          h.observe({ backend, operation }, (performance.now() - started) / 1000)
        }
        return r.finally(done)
      }
    }
  })
}

export function timedStore (store: Store, h: Histogram): Store {
  const parts = Object.fromEntries(PARTS.map((p) => [p, timedPart(store[p], p, store.kind, h)]))
  return {
    kind: store.kind,
    ...(parts as Pick<Store, (typeof PARTS)[number]>),
    ping: async () => {
      await store.ping()
    },
    close: async () => {
      await store.close()
    }
  }
}
