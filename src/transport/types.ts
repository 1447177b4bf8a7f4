/** The CSS's view of the broker, whichever it is (embedded Aedes or an external broker). */
export interface CloudTransport {
  /** QoS 1 (default) publish resolves when the broker accepted it; QoS 0 when it was handed over. */
  publish: (topic: string, payload: Buffer, qos?: 0 | 1) => Promise<void>
  /**
   * Receives every ESS message. The handler's promise settles before the message is acknowledged,
   * so an acknowledged message has been processed durably.
   */
  onMessage: (handler: (topic: string, payload: Buffer, clientUsername?: string) => Promise<void>) => void
  /** Node connect/disconnect as the broker sees them (embedded only; external brokers report none). */
  onPresence: (handler: (username: string, online: boolean) => void) => void
  /** Called after every (re)subscription to the up topics (external brokers; the embedded one never loses it). */
  onSubscribed?: (handler: () => void) => void
  /**
   * Drops the live connection of a client (embedded broker only; an external broker re-checks
   * credentials on reconnect).
   */
  disconnect: (username: string) => void
  /**
   * External brokers: topics the CSS subscribes to on behalf of the edges on its HTTP link (their
   * down topics, published by any CSS instance), with their messages.
   */
  follow?: {
    watch: (topic: string, on: boolean) => void
    onMessage: (h: (topic: string, payload: Buffer) => void) => void
  }
  /** Whether the broker is up (embedded: listening; external: connected). */
  connected: () => boolean
  /** Where ESSs connect, for logs and tests. */
  readonly urls: string[]
  close: () => Promise<void>
}

/** What a client presented when it connected. */
export interface BrokerLogin {
  username?: string
  password?: Buffer
  /** Common name of a client certificate the broker verified against its CA. */
  certificateName?: string
  clientId: string
  /** The client's network address (throttling is per address). */
  address: string
}

/** The client's identity (its username), or why it is refused. */
export type BrokerVerdict =
  { ok: true; username: string } | { ok: false; reason: 'bad-credentials' | 'throttled' | 'client-id' }

export interface BrokerAuth {
  authenticate: (login: BrokerLogin) => Promise<BrokerVerdict>
  mayPublish: (username: string, topic: string) => boolean
  maySubscribe: (username: string, topic: string) => boolean
}

export interface LinkHandlers {
  /** Called for each message; the PUBACK waits for its promise. */
  onMessage: (topic: string, payload: Buffer) => Promise<void>
  /** Called after every successful (re)connect and subscribe. */
  onConnect?: () => Promise<void>
  /** Called each time the connection drops or an attempt fails (the link keeps retrying). */
  onDown?: () => void
}

/**
 * The ESS's connection to the CSS, whichever channel carries it (MQTT, the HTTP link, or auto).
 * Built first (so the services that publish through it can be built with it), opened once they
 * exist. Publishing before it is connected fails loudly.
 */
export interface EdgeLink {
  open: (handlers: LinkHandlers) => Promise<void>
  /** QoS 1 resolves once the CSS side has it (PUBACK, or the HTTP answer after handling). */
  publish: (topic: string, payload: Buffer, qos?: 0 | 1) => Promise<void>
  close: () => Promise<void>
  readonly connected: boolean
  /** Which channel carries the messages now. */
  readonly channel: 'mqtt' | 'http'
}
