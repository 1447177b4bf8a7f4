/** The ESS's one way to the CSS: encodes protocol messages onto the node's up topic. */
import type { Logger } from '../common/log.js'
import type { DestinationKey } from '../common/model.js'
import { encode, encodeChunk, type UpMessage } from '../common/protocol/messages.js'
import { upTopic } from '../common/protocol/topics.js'

/** What the uplink needs of a connection (the MQTT link, or a fake in unit tests). */
export interface Link {
  publish: (topic: string, payload: Buffer, qos?: 0 | 1) => Promise<void>
  readonly connected: boolean
  /** Which channel carries the messages now (reported in register). */
  readonly channel?: 'mqtt' | 'http'
}

export class Uplink {
  readonly #link: Link
  readonly #topic: string
  readonly #log: Logger

  constructor (link: Link, node: DestinationKey, log: Logger) {
    this.#link = link
    this.#topic = upTopic(node)
    this.#log = log
  }

  get connected (): boolean {
    return this.#link.connected
  }

  get channel (): 'mqtt' | 'http' {
    return this.#link.channel ?? 'mqtt'
  }

  /** Resolves once the broker took the message (chunks: once handed over, QoS 0). */
  async send (msg: UpMessage): Promise<void> {
    if (msg.kind === 'chunk') await this.#link.publish(this.#topic, encodeChunk(msg), 0)
    else await this.#link.publish(this.#topic, encode(msg))
  }

  /** A raw payload (a chunk frame the chunk server built). */
  async sendRaw (payload: Buffer, qos: 0 | 1): Promise<void> {
    await this.#link.publish(this.#topic, payload, qos)
  }

  /**
   * Sends and waits, but a failure is only logged: the state it reports is durable here already,
   * and the register on the next connect repeats it.
   */
  async sendOrDefer (msg: UpMessage): Promise<void> {
    await this.send(msg).catch((err: unknown) => {
      this.#log.warn('Message to the CSS not sent; the next register report repeats it', {
        err,
        kind: msg.kind
      })
    })
  }

  /**
   * Sends without waiting for the PUBACK. Used inside message handlers: mqtt.js delivers no further
   * packets (PUBACKs included) until the handler returns, so awaiting there would deadlock.
   */
  sendSoon (msg: UpMessage): void {
    void this.sendOrDefer(msg)
  }
}
