// The package ships no types; this is the part of it we call.
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis'
  interface RedisPersistence {
    destroy: () => Promise<void>
    addSubscriptions: (client: unknown, subs: object) => Promise<unknown>
  }
  // eslint-disable-next-line no-restricted-syntax -- the package's own shape (module.exports = fn)
  export default function aedesPersistenceRedis (opts: { conn: Redis, maxSessionDelivery?: number }): RedisPersistence
}
