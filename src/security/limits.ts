/**
 * Abuse limits: a token bucket per app key (requests per second with a burst), and a back-off on
 * failed logins per key and per client address (each failure beyond a few doubles the wait).
 * In memory and per process: enough to stop a runaway client or a password guesser.
 */

/** Token bucket per key. */
export class RateLimiter {
  readonly #perSecond: number
  readonly #burst: number
  readonly #buckets = new Map<string, { tokens: number, at: number }>()

  constructor (perSecond: number, burst = perSecond * 2) {
    this.#perSecond = perSecond
    this.#burst = burst
  }

  /** 0 when allowed, else the seconds to wait. */
  take (key: string, now = Date.now()): number {
    if (this.#buckets.size > 100_000) this.#buckets.clear() // bounded memory under a key-spraying attack
    const b = this.#buckets.get(key) ?? { tokens: this.#burst, at: now }
    b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#perSecond)
    b.at = now
    this.#buckets.set(key, b)
    if (b.tokens >= 1) { b.tokens -= 1; return 0 }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perSecond))
  }
}

const MAX_BLOCK_MS = 15 * 60_000

/** Failed-login back-off per identifier (an app key, a client address). */
export class LoginBackoff {
  readonly #state = new Map<string, { failures: number, until: number }>()
  readonly #free: number

  /** `freeFailures`: failures allowed before the first wait (1 s, then doubling up to 15 min). */
  constructor (freeFailures = 5) { this.#free = freeFailures }

  /** 0 when a login may be tried, else the seconds to wait. */
  blocked (id: string, now = Date.now()): number {
    const s = this.#state.get(id)
    return s === undefined || s.until <= now ? 0 : Math.ceil((s.until - now) / 1000)
  }

  failed (id: string, now = Date.now()): void {
    if (this.#state.size > 100_000) this.#state.clear()
    const s = this.#state.get(id) ?? { failures: 0, until: 0 }
    s.failures++
    if (s.failures > this.#free) s.until = now + Math.min(MAX_BLOCK_MS, 1000 * 2 ** (s.failures - this.#free - 1))
    this.#state.set(id, s)
  }

  succeeded (id: string): void { this.#state.delete(id) }
}
