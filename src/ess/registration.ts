/**
 * Registration with the CSS: a register (with what this edge holds) on every connect, sent again
 * with backoff and jitter until the CSS answers. A register published while no CSS was subscribed
 * (a broker restarted without persistence) is lost, and nothing else would ever repeat it.
 */
import { VERSION } from '../common/version.js'
import type { Logger } from '../common/log.js'
import type { Holding } from '../common/protocol/messages.js'
import type { Uplink } from './uplink.js'

export const CODE_VERSION = VERSION
const RETRY_MS = 5000
const RETRY_MAX_MS = 60_000

export interface RegistrationOptions {
  up: Uplink
  /** What this edge holds, reported in every register. */
  holdings: () => Promise<Holding[]>
  properties: Readonly<Record<string, string>>
  /** Around a resync: `pause` at register, `resume` once the CSS answered. */
  gate: { pause: () => void; resume: () => void }
  /** First wait for the answer before registering again (doubles up to 60 s). */
  retryMs?: number
  log: Logger
}

export class Registration {
  readonly #o: RegistrationOptions
  #timer: NodeJS.Timeout | undefined
  #delay: number

  constructor (opts: RegistrationOptions) {
    this.#o = opts
    this.#delay = opts.retryMs ?? RETRY_MS
  }

  async register (): Promise<void> {
    this.#o.gate.pause()
    this.#delay = this.#o.retryMs ?? RETRY_MS
    await this.#send()
  }

  /** The CSS answered: no more retries, and held plugin work goes ahead. */
  answered (): void {
    this.#stopTimer()
    this.#o.gate.resume()
  }

  /** The CSS asked every edge to register again, spread over `withinMs`. */
  again (withinMs: number): void {
    const timer = setTimeout(() => {
      this.register().catch((err: unknown) => {
        this.#o.log.warn('Register not sent', { err })
      })
    }, Math.random() * withinMs)
    timer.unref()
  }

  close (): void {
    this.#stopTimer()
  }

  #stopTimer (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  async #send (): Promise<void> {
    this.#stopTimer()
    const holdings = await this.#o.holdings()
    const properties = { ...this.#o.properties }
    const protocol = this.#o.up.channel
    await this.#o.up.send({ v: 1, kind: 'register', properties, codeVersion: CODE_VERSION, holdings, protocol })
    const wait = Math.round(this.#delay * (0.75 + Math.random() * 0.5))
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (!this.#o.up.connected) return // the next connect registers anyway
      this.#o.log.warn('No answer to register yet; registering again', { waitedMs: wait })
      this.#delay = Math.min(this.#delay * 2, RETRY_MAX_MS)
      this.#send().catch((err: unknown) => {
        this.#o.log.warn('Register not sent', { err })
      })
    }, wait)
    this.#timer.unref()
  }
}
