/// <reference path="./aedes-persistence-redis.d.ts" />
/**
 * What joins the embedded brokers of several CSS instances into one: Redis for message routing
 * (mqemitter-redis: a publish on any instance reaches the subscribers on every instance) and for
 * the brokers' persistence (aedes-persistence-redis: sessions, subscriptions, queued QoS 1
 * messages, so an edge may reconnect to another instance and get what was queued for it). The only
 * import of ioredis, mqemitter-redis and aedes-persistence-redis.
 */
import { Redis } from 'ioredis'
import MQEmitterRedis from 'mqemitter-redis'
// The main export: the package's persistence behind aedes-persistence's adapter, which gives
// Aedes 1.x the promises and Node streams it expects (the bare asynchronous class returns
// async generators where Aedes pipes streams: its subscriptions never complete).
import aedesPersistenceRedis from 'aedes-persistence-redis'
import { TransportError } from '../common/errors.js'
import { parseUpTopic } from '../common/protocol/topics.js'
import type { Logger } from '../common/log.js'

/** A listener of the shared message bus: called for each message, `done` when handled. */
export type BusListener = (message: { topic: string, payload?: unknown }, done: () => void) => void

export interface ClusterParts {
  /** For Aedes's `mq` option; also followed directly for the edges on the HTTP link. */
  mq: {
    on: (topic: string, listener: BusListener) => void
    removeListener: (topic: string, listener: BusListener) => void
  }
  /** For Aedes's `persistence` option. */
  persistence: unknown
  /** After the broker closed, or when it failed to start. */
  close: () => Promise<void>
}

/** Connects to Redis at `url` (redis:// or rediss://); fails if it cannot be reached in time. */
export async function redisClusterParts (url: string, concurrency: number, log: Logger): Promise<ClusterParts> {
  if (!/^rediss?:\/\//.test(url)) throw new TransportError('ClusterRedisAddress must be a redis:// or rediss:// URL')
  // Fail fast at start when Redis is not there; later, ioredis reconnects by itself and commands
  // wait for it (up to its default of 20 retries) rather than fail at the first blip.
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await probe.connect()
    await probe.ping()
  } catch (err) {
    // The URL may carry a password: name only where it points.
    throw new TransportError(`Redis at ${redactedUrl(url)} cannot be reached`, { cause: err })
  } finally {
    probe.disconnect()
  }
  const conn = await connected(url, {})
  conn.on('error', (err: unknown) => {
    log.warn('Redis connection (broker persistence) failed; retrying', { err })
  })
  // The bus's two connections, connected before use. The subscriber skips ioredis's ready check:
  // its INFO is refused on a connection in subscriber mode, which broke the bus on a reconnect.
  const pubConn = await connected(url, {})
  const subConn = await connected(url, { enableReadyCheck: false })
  const mq = MQEmitterRedis({ pubConn, subConn, concurrency })
  // An edge's message is handled by the instance it reached, before Aedes publishes it on; nobody
  // subscribes to up topics, so sending them through Redis (two thirds of a fan-out's messages:
  // each edge's received and consumed acks) would only cost every instance and Redis CPU.
  const emit = mq.emit.bind(mq)
  mq.emit = (msg, done) => {
    if (parseUpTopic(msg.topic) === undefined) emit(msg, done)
    else if (done !== undefined) setImmediate(done)
  }
  ;(mq as unknown as { state: NodeJS.EventEmitter }).state.on('error', (err: unknown) => {
    log.warn('Redis connection (broker messages) failed; retrying', { err })
  })
  const persistence = onceASubscribe(aedesPersistenceRedis({ conn }))
  log.info('Embedded broker clustered through Redis', { redis: redactedUrl(url) })
  return {
    mq,
    persistence,
    // (The broker closes `mq` as it closes; closing it again is a no-op. A broker that failed to
    // start did not, so both are closed here.)
    close: async () => {
      await new Promise<void>((resolve) => mq.close(() => resolve()))
      await persistence.destroy().catch(() => {})
    }
  }
}

/**
 * Aedes 1.x stores a SUBSCRIBE once per topic in it, each time passing the whole packet's list.
 * The Redis persistence then announces the same list once per topic and waits for its own
 * announcement, keyed by the list's first topic: all but one of the waits are overwritten and
 * never end, and a SUBSCRIBE of two topics or more is never answered. One store per list.
 */
function onceASubscribe<P extends { addSubscriptions: (client: unknown, subs: object) => Promise<unknown> }> (p: P): P {
  const add = p.addSubscriptions.bind(p)
  const inFlight = new WeakMap<object, Promise<unknown>>()
  p.addSubscriptions = async (client, subs) => {
    const had = inFlight.get(subs)
    if (had !== undefined) return await had
    const done = add(client, subs)
    inFlight.set(subs, done)
    return await done
  }
  return p
}

async function connected (url: string, opts: { enableReadyCheck?: boolean }): Promise<Redis> {
  const r = new Redis(url, { lazyConnect: true, ...opts })
  await r.connect()
  return r
}

function redactedUrl (url: string): string {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}`
  } catch {
    return 'redis'
  }
}
