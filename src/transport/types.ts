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
  /** Drops the live connection of a client (embedded broker only; an external broker re-checks credentials on reconnect). */
  disconnect: (username: string) => void
  /** Where ESSs connect, for logs and tests. */
  readonly urls: string[]
  close: () => Promise<void>
}

export interface BrokerAuth {
  /**
   * Resolves the client's identity (its username) or undefined to refuse it. `certificateName` is
   * the common name of a client certificate the broker verified against its CA.
   */
  authenticate: (username: string | undefined, password: Buffer | undefined, certificateName?: string) => Promise<string | undefined>
  mayPublish: (username: string, topic: string) => boolean
  maySubscribe: (username: string, topic: string) => boolean
}
