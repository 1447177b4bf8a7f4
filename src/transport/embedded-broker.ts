/** The embedded MQTT broker (Aedes, MQTT 3.1.1): the only `aedes` import. ESS traffic is handled in-process. */
import tls from 'node:tls'
import { Aedes, type Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { parseUpTopic } from '../common/protocol/topics.js'
import { ProtocolError, TransportError } from '../common/errors.js'
import type { Logger } from '../common/log.js'

import {
  listenTcp,
  listenTls,
  listenWebSocket,
  type Listener,
  type StreamHandler,
  type TlsMaterial
} from './listeners.js'
import type { BrokerAuth, CloudTransport } from './types.js'
import { redisClusterParts, type BusListener, type ClusterParts } from './aedes-cluster.js'

// mqtt-packet (Aedes's and mqtt.js's encoder) otherwise builds, on its first packet, a table of
// 65,536 two-byte Buffers for packet ids: 7-10 MB of heap kept for the life of the process, to save
// one 2-byte allocation per packet (issue #22: idle RSS). The same switch as mqtt.js's `writeCache`.
mqttPacket.writeToStream.cacheNumbers = false

export interface EmbeddedBrokerOptions {
  host: string
  /** Plain TCP port; undefined for no plain-text listener (TLS required). */
  port?: number
  tlsPort?: number
  wsPort?: number
  /** Server certificate for the TLS and wss listeners (and the client CA, for certificate login). */
  tls?: TlsMaterial
  auth: BrokerAuth
  /** Largest publish payload accepted from a client. */
  maxPayload?: number
  /**
   * ESS messages are for an in-process handler (the CSS): until one is set (`onMessage`), they
   * are refused, never acknowledged unhandled. Without it the broker is a plain broker.
   */
  handlesUpMessages?: boolean
  /**
   * redis:// URL: this broker is one of several (one per CSS instance) sharing messages, sessions
   * and queued messages through Redis. An edge may connect to any of them.
   */
  clusterRedis?: string
  log: Logger
}

/** The common name of a verified client certificate, if the client presented one. */
function certificateIdentity (client: Client): string | undefined {
  const conn: unknown = client.conn
  const socket = conn instanceof tls.TLSSocket ? conn : client.req?.socket
  if (!(socket instanceof tls.TLSSocket) || !socket.authorized) return undefined
  const cn = socket.getPeerCertificate().subject?.CN
  return typeof cn === 'string' ? cn : undefined
}

/** The client's remote address, for per-address throttling. */
function clientAddress (client: Client): string {
  const conn = client.conn as { remoteAddress?: string }
  return conn.remoteAddress ?? client.req?.socket.remoteAddress ?? 'unknown'
}

// Aedes's AuthErrorCode is an ambient const enum, unusable with isolatedModules: use the numbers.
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const RETURN_CODE = {
  'bad-credentials': BAD_USERNAME_OR_PASSWORD,
  throttled: SERVER_UNAVAILABLE,
  'client-id': IDENTIFIER_REJECTED
} as const
// Messages the broker has in flight at once (Aedes's default is 100): its queue is an array shifted
// per message, so a fan-out to 10,000 edges with a small window grows quadratic.
const IN_FLIGHT_MESSAGES = 20_000

export async function startEmbeddedBroker (
  opts: EmbeddedBrokerOptions
): Promise<CloudTransport & { port: number }> {
  const { auth, log } = opts
  // Keyed by the client object, not its id: when a client id is taken over, the old connection's
  // disconnect must not erase the new one's identity.
  const identities = new Map<Client, string>()
  let handler: ((topic: string, payload: Buffer) => Promise<void>) | undefined
  let presence: (username: string, online: boolean) => void = () => {}
  const cluster: ClusterParts | undefined =
    opts.clusterRedis === undefined
      ? undefined
      : await redisClusterParts(opts.clusterRedis, IN_FLIGHT_MESSAGES, log)
  const broker = await Aedes.createBroker({
    concurrency: IN_FLIGHT_MESSAGES,
    ...(cluster === undefined ? {} : { mq: cluster.mq, persistence: cluster.persistence }),
    authenticate: (client: Client, username, password, done) => {
      const cert = certificateIdentity(client)
      const login = {
        clientId: client.id,
        address: clientAddress(client),
        ...(username === undefined ? {} : { username }),
        ...(password === undefined ? {} : { password }),
        ...(cert === undefined ? {} : { certificateName: cert })
      }
      auth.authenticate(login).then(
        (v) => {
          if (!v.ok) {
            log.warn('MQTT client refused', {
              clientId: client.id,
              username,
              address: login.address,
              reason: v.reason
            })
            done(
              Object.assign(new ProtocolError(`Connection refused: ${v.reason}`), {
                returnCode: RETURN_CODE[v.reason]
              }),
              false
            )
            return
          }
          identities.set(client, v.username)
          done(null, true)
        },
        (err: unknown) => {
          log.error('MQTT authentication failed', { err })
          done(
            Object.assign(new ProtocolError('Server unavailable'), { returnCode: SERVER_UNAVAILABLE }),
            false
          )
        }
      )
    },
    authorizePublish: (client, packet, done) => {
      const who = client === null ? undefined : identities.get(client)
      if (opts.maxPayload !== undefined && packet.payload.length > opts.maxPayload) {
        log.warn('MQTT publish refused: payload too large', {
          clientId: client?.id,
          username: who,
          bytes: packet.payload.length
        })
        done(new ProtocolError('Payload too large'))
        return
      }
      if (who === undefined || !auth.mayPublish(who, packet.topic)) {
        log.warn('MQTT publish refused', { clientId: client?.id, username: who, topic: packet.topic })
        done(new ProtocolError('Not authorized'))
        return
      }
      // ESS messages are handled here, before Aedes writes the PUBACK (it acknowledges QoS 1
      // before delivering to subscribers): an edge's message is acknowledged only once handled
      // durably. A failure (or no handler yet, while starting) refuses the publish; Aedes then
      // drops the connection, and the edge reconnects and sends it again. Nobody subscribes to up
      // topics, so the publish that follows goes nowhere.
      // Only ESS messages (up topics) are the CSS's: anything else is plain brokering.
      if (parseUpTopic(packet.topic) === undefined) {
        done(null)
        return
      }
      if (handler === undefined) {
        // The CSS is still starting: refuse rather than acknowledge a message nobody handles.
        if (opts.handlesUpMessages === true) done(new ProtocolError('Not ready'))
        else done(null)
        return
      }
      handler(packet.topic, Buffer.from(packet.payload)).then(
        () => {
          done(null)
        },
        (err: unknown) => {
          log.warn('An ESS message could not be handled; not acknowledged, its sender sends it again', {
            err,
            topic: packet.topic
          })
          done(new ProtocolError('Not handled'))
        }
      )
    },
    authorizeSubscribe: (client, sub, done) => {
      const who = identities.get(client)
      if (who !== undefined && auth.maySubscribe(who, sub.topic)) {
        done(null, sub)
        return
      }
      log.warn('MQTT subscribe refused', { clientId: client.id, username: who, topic: sub.topic })
      // A null subscription answers with the 0x80 failure code and keeps the client connected.
      done(null, null)
    }
  }).catch(async (err: unknown) => {
    // (Its persistence's setup reads Redis: a failed start must not leave Redis connections open.)
    await cluster?.close()
    throw err
  })
  // Aedes reports a failure of its persistence (Redis, when clustered) as an 'error' event: logged,
  // not a crash; the edges' registers resync whatever it lost.
  // (Aedes's typings omit the event its persistence failures raise.)
  ;(broker as unknown as NodeJS.EventEmitter).on('error', (err: unknown) => {
    log.error('The MQTT broker failed', { err })
  })
  const closeClientsOf = (username: string): void => {
    for (const [client, who] of identities) if (who === username) client.close()
  }
  broker.on('client', (client: Client) => {
    const who = identities.get(client)
    if (who !== undefined) presence(who, true)
  })
  // Clustered, an edge that reconnects to another instance is dropped here after it is online
  // there (Aedes announces each new client to the other brokers): that drop is not an offline.
  const takenOver = new Set<string>()
  if (cluster !== undefined) {
    // Aedes's table of its connected clients by id (untyped in its declarations).
    const local = (broker as unknown as { clients: Record<string, unknown> }).clients
    cluster.mq.on('$SYS/+/new/clients', (m, done) => {
      const id = String(m.payload)
      if (!m.topic.startsWith(`$SYS/${broker.id}/`) && id in local) takenOver.add(id)
      done()
    })
  }
  broker.on('clientDisconnect', (client: Client) => {
    const who = identities.get(client)
    identities.delete(client)
    const moved = takenOver.delete(client.id)
    if (who !== undefined && !moved) presence(who, false)
  })
  broker.on('client', (client: Client) => {
    takenOver.delete(client.id)
  })
  // A client refused at CONNECT never becomes a client: forget its identity if one was set.
  broker.on('clientError', (client: Client) => {
    if (client.closed) identities.delete(client)
  })
  const handle: StreamHandler = (stream, req) => {
    broker.handle(stream, req)
  }
  const listeners: Listener[] = []
  const closeListeners = async (): Promise<void> => {
    for (const l of listeners) await l.close()
  }
  try {
    if (opts.port !== undefined) listeners.push(await listenTcp(opts.host, opts.port, handle))
    if (opts.tlsPort !== undefined) {
      if (opts.tls === undefined) {
        throw new TransportError('A TLS listener needs a server certificate and key')
      }
      listeners.push(await listenTls(opts.host, opts.tlsPort, opts.tls, handle))
    }
    if (opts.wsPort !== undefined) {
      listeners.push(await listenWebSocket(opts.host, opts.wsPort, opts.tls, handle))
    }
    if (listeners.length === 0) {
      throw new TransportError(
        'The embedded broker has no listener: set MqttListeningPort or MqttTlsListeningPort'
      )
    }
  } catch (err) {
    await closeListeners()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    await cluster?.close()
    throw err
  }
  let closed = false
  return {
    port: listeners[0]?.port ?? 0,
    urls: listeners.map((l) => l.url),
    publish: async (topic, payload, qos = 1) => {
      await new Promise<void>((resolve, reject) => {
        broker.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err) => {
          err === undefined || err === null
            ? resolve()
            : reject(new TransportError('Publish failed', { cause: err }))
        })
      })
    },
    onMessage: (h) => {
      handler = h
    },
    onPresence: (handler) => {
      presence = handler
    },
    connected: () => !closed && !broker.closed,
    disconnect: (username) => {
      log.info('Dropping the connections of a removed or disabled client', { username })
      closeClientsOf(username)
    },
    close: async () => {
      if (closed) return
      closed = true
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await closeListeners()
      await cluster?.close()
    },
    ...(cluster === undefined ? {} : { follow: follower(cluster) })
  }
}

/**
 * Clustered: the down topics of the edges on this instance's HTTP link, followed on the shared
 * bus, so what any instance publishes for them reaches them (ours included: it comes back too).
 */
function follower (cluster: ClusterParts): NonNullable<CloudTransport['follow']> {
  let deliver: (topic: string, payload: Buffer) => void = () => {}
  const listeners = new Map<string, BusListener>()
  return {
    watch: (topic, on) => {
      const had = listeners.get(topic)
      if (on && had === undefined) {
        const l: BusListener = (m, done) => {
          const p = m.payload
          deliver(m.topic, Buffer.isBuffer(p) ? p : Buffer.from(String(p)))
          done()
        }
        listeners.set(topic, l)
        cluster.mq.on(topic, l)
      } else if (!on && had !== undefined) {
        listeners.delete(topic)
        cluster.mq.removeListener(topic, had)
      }
    },
    onMessage: (h) => {
      deliver = h
    }
  }
}
