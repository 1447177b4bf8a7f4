/**
 * Every failure of a backend reaches callers as SYNC_ERR_STORAGE: a driver error thrown by any
 * method of a store (a read as much as a write) is wrapped, so the API answers 503 and the broker
 * withholds its acknowledgement, instead of treating it as a bug (500, acknowledged).
 */
import { isSyncError, StorageError } from '../common/errors.js'

function wrap (err: unknown, where: string): unknown {
  return isSyncError(err) ? err : new StorageError(`The store failed (${where})`, { cause: err })
}

export function guardStoreMethods<T extends object> (target: T, name: string): T {
  // One wrapper per method, made on first use (not a new closure on every call); made again if
  // the method was replaced (tests inject faults that way).
  const wrapped = new Map<PropertyKey, { fn: unknown; w: unknown }>()
  return new Proxy(target, {
    get (obj, prop, receiver) {
      const v: unknown = Reflect.get(obj, prop, receiver)
      if (typeof v !== 'function') return v
      const cached = wrapped.get(prop)
      if (cached?.fn === v) return cached.w
      const where = `${name}.${String(prop)}`
      const w = (...args: unknown[]): unknown => {
        let r: unknown
        try {
          r = (v as (...a: unknown[]) => unknown).apply(obj, args)
        } catch (err) {
          throw wrap(err, where)
        }
        return r instanceof Promise
          ? r.catch((err: unknown) => {
            throw wrap(err, where)
          })
          : r
      }
      wrapped.set(prop, { fn: v, w })
      return w
    }
  })
}
