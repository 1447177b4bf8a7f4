/** MQTT client side (mqtt.js): the only `mqtt` import. Used by the ESS, and by the CSS on an external broker. */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { TransportError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { UP_WILDCARD } from '../common/protocol/topics.js'
import type { CloudTransport, EdgeLink, LinkHandlers } from './types.js'

export interface MqttConnection {
  publish: (topic: string, payload: Buffer, qos?: 0 | 1) => Promise<void>
  close: () => Promise<void>
  readonly connected: boolean
}

export interface LinkOptions {
  url: string
  clientId: string
  username?: string
  password?: string
  /** For mqtts/wss: the CA to trust instead of the system's (pinning), and a client certificate. */
  tls?: { ca?: string; cert?: string; key?: string }
  /** Topics to (re)subscribe at QoS 1 on every connect. */
  subscriptions: string[]
  /**
   * How long to wait for the first connection. `undefined`: wait up to 15 s and fail. A number:
   * wait that long, then go on and keep reconnecting in the background (an edge must serve its
   * apps while the cloud is unreachable). Refused credentials fail at once either way.
   */
  firstConnectWaitMs?: number
  log: Logger
}

export type ClientOptions = LinkOptions & LinkHandlers

const TLS_TRUST_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID'
])

/** Builds and opens a connection in one step (clients with nothing to build in between). */
export async function connectMqtt (opts: ClientOptions): Promise<MqttConnection> {
  const link = mqttLink(opts)
  await link.open(opts)
  return link
}

function clientOptions (opts: LinkOptions): IClientOptions {
  const options: IClientOptions = {
    clientId: opts.clientId,
    protocolVersion: 4,
    clean: false, // persistent session: the broker queues QoS 1 messages while we are away
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    keepalive: 30,
    resubscribe: false,
    rejectUnauthorized: true,
    // No table of 65,536 packet-id Buffers (7-10 MB of heap for life; see embedded-broker.ts).
    writeCache: false
  }
  if (opts.username !== undefined) options.username = opts.username
  if (opts.password !== undefined) options.password = opts.password
  if (opts.tls?.ca !== undefined) options.ca = opts.tls.ca
  if (opts.tls?.cert !== undefined) options.cert = opts.tls.cert
  if (opts.tls?.key !== undefined) options.key = opts.tls.key
  return options
}

export function mqttLink (opts: LinkOptions): EdgeLink {
  let client: MqttClient | undefined
  const notOpen = (): never => {
    throw new TransportError(`Not connected to ${opts.url} yet`)
  }
  return {
    channel: 'mqtt',
    get connected () {
      return client?.connected ?? false
    },
    open: async (handlers) => {
      if (client !== undefined) throw new TransportError('This connection is open already')
      client = await openClient(opts, handlers)
    },
    publish: async (topic, payload, qos = 1) => {
      const c = client ?? notOpen()
      try {
        await c.publishAsync(topic, payload, { qos })
      } catch (err) {
        throw new TransportError('Publish failed', { cause: err })
      }
    },
    close: async () => {
      const c = client
      if (c === undefined) return
      // A graceful end waits for in-flight messages, which never complete while disconnected.
      if (!c.connected) {
        await c.endAsync(true)
        return
      }
      const timer = setTimeout(() => {
        c.end(true)
      }, 2000)
      try {
        await c.endAsync()
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

async function openClient (opts: LinkOptions, handlers: LinkHandlers): Promise<MqttClient> {
  const client: MqttClient = mqtt.connect(opts.url, clientOptions(opts))
  // mqtt.js sends the PUBACK only when this callback runs.
  client.handleMessage = (packet, done) => {
    // mqtt.js hands each message its own Buffer (sliced out of its read buffer): no second copy
    // (a 256 KiB chunk copied again per message was a third of an edge's GC in a large transfer).
    const p = packet.payload
    const payload = Buffer.isBuffer(p) ? p : Buffer.from(p)
    handlers.onMessage(packet.topic, payload).then(
      () => {
        done()
      },
      (err: unknown) => {
        opts.log.error('Message handler failed', { err, topic: packet.topic })
        done()
      }
    )
  }
  let firstConnect = true
  client.on('connect', () => {
    // A connection that subscribes to nothing (the CSS's publisher) sends no SUBSCRIBE at all: an
    // empty one is a protocol error brokers answer with "empty_topic_list".
    const topics = Object.fromEntries(opts.subscriptions.map((t) => [t, { qos: 1 as const }]))
    const subscribed = opts.subscriptions.length === 0 ? Promise.resolve([]) : client.subscribeAsync(topics)
    subscribed
      .then(async (granted) => {
        const refused = granted.filter((g) => g.qos === 128)
        if (refused.length > 0) {
          opts.log.error('Broker refused subscriptions', { topics: refused.map((g) => g.topic) })
        }
        if (!firstConnect) opts.log.info('Reconnected to broker', { url: opts.url })
        firstConnect = false
        await handlers.onConnect?.()
      })
      .catch((err: unknown) => {
        opts.log.warn('Subscribe after connect failed', { err })
      })
  })
  client.on('error', (err) => {
    opts.log.warn('MQTT client error', { err, url: opts.url })
  })
  client.on('close', () => {
    handlers.onDown?.()
  })
  await firstConnection(client, opts)
  return client
}

function firstConnection (client: MqttClient, opts: LinkOptions): Promise<void> {
  const tolerant = opts.firstConnectWaitMs !== undefined
  return new Promise<void>((resolve, reject) => {
    const fail = (err: TransportError): void => {
      clearTimeout(timer)
      client.end(true)
      reject(err)
    }
    const timer = setTimeout(() => {
      if (!tolerant) {
        fail(new TransportError(`Cannot connect to ${opts.url} within 15 s`))
        return
      }
      opts.log.warn('Broker not reachable yet; reconnecting in the background', { url: opts.url })
      resolve()
    }, opts.firstConnectWaitMs ?? 15_000)
    client.once('connect', () => {
      clearTimeout(timer)
      resolve()
    })
    client.once('error', (err) => {
      const code = (err as { code?: number | string }).code
      if (code === 4 || code === 5) {
        const who = opts.username ?? 'anonymous'
        fail(new TransportError(`Broker refused the credentials of ${who}`, { cause: err }))
      } else if (typeof code === 'string' && TLS_TRUST_ERRORS.has(code)) {
        // An untrusted certificate will not become trusted by retrying: fail at once, loudly.
        fail(
          new TransportError(
            `The broker's TLS certificate is not trusted (${code}); check CaCertificate and the broker's host name`,
            { cause: err }
          )
        )
      }
    })
  })
}

/**
 * Members of the `$share/css` group per CSS instance. Fixed: each is a persistent session the
 * broker queues for by name, so changing the number would orphan the queues of the dropped names.
 */
const SHARED_SUBSCRIBERS = 16

/** The CSS on an external broker: one shared subscription so several CSS processes share the load. */
export async function connectExternalBroker (opts: {
  url: string
  username?: string
  password?: string
  instanceId: string
  log: Logger
}): Promise<CloudTransport> {
  let handler: ((topic: string, payload: Buffer) => Promise<void>) | undefined
  // A subscription completed before anyone listened is reported when the listener arrives.
  let onSubscribed: (() => void) | undefined
  let missed = false
  const subscribed = (): void => {
    if (onSubscribed === undefined) missed = true
    else onSubscribed()
  }
  // Messages queued in our persistent session may arrive before the CSS registers its handler.
  let setReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => {
    setReady = resolve
  })
  const creds = { username: opts.username, password: opts.password }
  // Publishing goes through its own connection: mqtt.js reads no packets (PUBACKs included) while a
  // message handler runs, so a handler that publishes and awaits the PUBACK on the same connection
  // would deadlock.
  const pub = await connectMqtt({
    url: opts.url,
    clientId: `css-${opts.instanceId}-pub`,
    ...creds,
    subscriptions: [],
    onMessage: async () => {},
    log: opts.log
  })
  // mqtt.js hands a connection's messages over one at a time, and each waits until its effect is
  // durable (a store write): one subscriber handled about 37 edge messages a second on FerretDB.
  // Several members of the shared group, each with its own persistent session, work in parallel;
  // the broker spreads the messages over them (and over the other instances' members).
  const subscribers = await Promise.all(
    Array.from({ length: SHARED_SUBSCRIBERS }, async (_, k) =>
      await connectMqtt({
        url: opts.url,
        // The first keeps the name earlier releases used, so its queued messages are not orphaned.
        clientId: k === 0 ? `css-${opts.instanceId}` : `css-${opts.instanceId}-${k}`,
        ...creds,
        subscriptions: [`$share/css/${UP_WILDCARD}`],
        onMessage: async (topic, payload) => {
          await ready
          await handler?.(topic, payload)
        },
        // Messages published while the group had no member of ours are gone (a broker without
        // persistence, restarted): tell the caller, who asks every node to register again. The
        // first member speaks for all: while any other is connected, nothing is lost.
        onConnect: async () => {
          if (k === 0) subscribed()
        },
        log: opts.log
      })
    )
  )
  const follower = openFollower({ ...opts, ...creds })
  return {
    urls: [opts.url],
    publish: pub.publish,
    follow: follower,
    onMessage: (h) => {
      handler = h
      setReady()
    },
    onPresence: () => {},
    onSubscribed: (h) => {
      onSubscribed = h
      if (missed) {
        missed = false
        h()
      }
    },
    disconnect: () => {},
    connected: () => pub.connected && subscribers.every((c) => c.connected),
    close: async () => {
      await follower.close()
      for (const c of subscribers) await c.close()
      await pub.close()
    }
  }
}

/**
 * The CSS's subscriber for the down topics of edges on its HTTP link: a clean session (nothing to
 * keep across restarts: a new HTTP session resyncs), subscribed while any session needs a topic.
 */
interface Follower {
  watch: (topic: string, on: boolean) => void
  onMessage: (h: (topic: string, payload: Buffer) => void) => void
  close: () => Promise<void>
}

function openFollower (opts: {
  url: string
  username?: string
  password?: string
  instanceId: string
  log: Logger
}): Follower {
  let client: MqttClient | undefined
  let deliver: ((topic: string, payload: Buffer) => void) | undefined
  const topics = new Set<string>()
  // Connected on first use: most CSS instances never have an edge on the HTTP link.
  const connection = (): MqttClient => {
    if (client !== undefined) return client
    const c = mqtt.connect(opts.url, {
      clientId: `css-${opts.instanceId}-link`,
      username: opts.username,
      password: opts.password,
      clean: true,
      protocolVersion: 4,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      keepalive: 30,
      rejectUnauthorized: true,
      writeCache: false
    })
    c.on('message', (topic, payload) => {
      deliver?.(topic, Buffer.from(payload))
    })
    c.on('error', (err) => {
      opts.log.warn('MQTT follower error', { err, url: opts.url })
    })
    client = c
    return c
  }
  return {
    watch: (topic, on) => {
      if (on === topics.has(topic)) return
      const c = connection()
      if (on) {
        topics.add(topic)
        // mqtt.js queues this until connected and subscribes again after every reconnect.
        c.subscribe(topic, { qos: 1 }, (err) => {
          if (err !== null && err !== undefined) opts.log.warn('Could not follow a topic', { err, topic })
        })
      } else {
        topics.delete(topic)
        c.unsubscribe(topic)
      }
    },
    onMessage: (h) => {
      deliver = h
    },
    close: async () => {
      await client?.endAsync(true)
    }
  }
}
