/** The embedded MQTT broker (Aedes, MQTT 3.1.1): the only `aedes` import. ESS traffic is handled in-process. */
import tls from 'node:tls'
import { Aedes, type AedesPublishPacket, type Client } from 'aedes'
import { TransportError } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { UP_WILDCARD } from '../common/protocol/topics.js'
import { listenTcp, listenTls, listenWebSocket, type Listener, type StreamHandler, type TlsMaterial } from './listeners.js'
import type { BrokerAuth, CloudTransport } from './types.js'

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

// Aedes's AuthErrorCode is an ambient const enum, unusable with isolatedModules: use the numbers.
const BAD_USERNAME_OR_PASSWORD = 4
// Messages the broker has in flight at once (Aedes's default is 100). An ESS message holds its slot
// until our handler made it durable, so 100 would let only 100 acks share one status commit: a
// fan-out to 10,000 edges then waits out 200 commits in a row, and the broker's queue (an array
// shifted per message) grows quadratic. Acks are small; let a whole fleet's share one commit.
const IN_FLIGHT_MESSAGES = 20_000

export async function startEmbeddedBroker (opts: EmbeddedBrokerOptions): Promise<CloudTransport & { port: number }> {
  const { auth, log } = opts
  const identities = new Map<string, string>() // client id -> authenticated username
  let presence: (username: string, online: boolean) => void = () => {}
  const broker = await Aedes.createBroker({
    concurrency: IN_FLIGHT_MESSAGES,
    authenticate: (client: Client, username, password, done) => {
      auth.authenticate(username, password, certificateIdentity(client)).then((who) => {
        if (who === undefined) {
          log.warn('MQTT client refused', { clientId: client.id, username })
          const err = Object.assign(new Error('Bad username or password'), { returnCode: BAD_USERNAME_OR_PASSWORD })
          done(err, false)
          return
        }
        identities.set(client.id, who)
        done(null, true)
      }, (err: unknown) => {
        log.error('MQTT authentication failed', { err })
        done(Object.assign(new Error('Server unavailable'), { returnCode: 3 }), false)
      })
    },
    authorizePublish: (client, packet, done) => {
      const who = client === null ? undefined : identities.get(client.id)
      if (opts.maxPayload !== undefined && packet.payload.length > opts.maxPayload) {
        log.warn('MQTT publish refused: payload too large', { clientId: client?.id, username: who, bytes: packet.payload.length })
        done(new Error('Payload too large'))
        return
      }
      if (who !== undefined && auth.mayPublish(who, packet.topic)) { done(null); return }
      log.warn('MQTT publish refused', { clientId: client?.id, username: who, topic: packet.topic })
      done(new Error('Not authorized'))
    },
    authorizeSubscribe: (client, sub, done) => {
      const who = identities.get(client.id)
      if (who !== undefined && auth.maySubscribe(who, sub.topic)) { done(null, sub); return }
      log.warn('MQTT subscribe refused', { clientId: client.id, username: who, topic: sub.topic })
      // A null subscription answers with the 0x80 failure code and keeps the client connected.
      done(null, null)
    }
  })
  const clients = new Map<string, Client>()
  broker.on('client', (client: Client) => {
    clients.set(client.id, client)
    const who = identities.get(client.id)
    if (who !== undefined) presence(who, true)
  })
  broker.on('clientDisconnect', (client: Client) => {
    if (clients.get(client.id) === client) clients.delete(client.id)
    const who = identities.get(client.id)
    identities.delete(client.id)
    if (who !== undefined) presence(who, false)
  })
  const handle: StreamHandler = (stream, req) => { broker.handle(stream, req) }
  const listeners: Listener[] = []
  const closeListeners = async (): Promise<void> => { for (const l of listeners) await l.close() }
  try {
    if (opts.port !== undefined) listeners.push(await listenTcp(opts.host, opts.port, handle))
    if (opts.tlsPort !== undefined) {
      if (opts.tls === undefined) throw new TransportError('A TLS listener needs a server certificate and key')
      listeners.push(await listenTls(opts.host, opts.tlsPort, opts.tls, handle))
    }
    if (opts.wsPort !== undefined) listeners.push(await listenWebSocket(opts.host, opts.wsPort, opts.tls, handle))
    if (listeners.length === 0) throw new TransportError('The embedded broker has no listener: set MqttListeningPort or MqttTlsListeningPort')
  } catch (err) {
    await closeListeners()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    throw err
  }
  let closed = false
  return {
    port: listeners[0]?.port ?? 0,
    urls: listeners.map((l) => l.url),
    publish: async (topic, payload, qos = 1) => {
      await new Promise<void>((resolve, reject) => {
        broker.publish({ cmd: 'publish', topic, payload, qos, retain: false, dup: false }, (err) => {
          err === undefined || err === null ? resolve() : reject(new TransportError('Publish failed', { cause: err }))
        })
      })
    },
    onMessage: (handler) => {
      // The callback gates the PUBACK to the edge: it is sent once our handler has finished.
      const deliver = (packet: AedesPublishPacket, cb: () => void): void => {
        handler(packet.topic, Buffer.from(packet.payload)).then(cb, (err: unknown) => {
          log.error('Handler failed on an ESS message', { err, topic: packet.topic })
          cb()
        })
      }
      broker.subscribe(UP_WILDCARD, deliver, () => {})
    },
    onPresence: (handler) => { presence = handler },
    disconnect: (username) => {
      for (const [clientId, who] of identities) {
        if (who !== username) continue
        log.info('Dropping the connection of a removed or disabled client', { clientId, username })
        clients.get(clientId)?.close()
      }
    },
    close: async () => {
      if (closed) return
      closed = true
      await new Promise<void>((resolve) => broker.close(() => resolve()))
      await closeListeners()
    }
  }
}
