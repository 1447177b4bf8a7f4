/**
 * Abuse limits: a token bucket per app key (requests per second with a burst), and a back-off on
 * failed logins per key and per client address (each failure beyond a few doubles the wait).
 * In memory and per process: enough to stop a runaway client or a password guesser.
 */

/** Token bucket per key. */
export class RateLimiter {
  readonly #perSecond: number
  readonly #burst: number
  readonly #buckets = new Map<string, { tokens: number; at: number }>()

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
    if (b.tokens >= 1) {
      b.tokens -= 1
      return 0
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perSecond))
  }
}

const MAX_BLOCK_MS = 15 * 60_000
/** Failures older than this are forgotten. */
const FORGET_AFTER_MS = 15 * 60_000

/** Failed-login back-off per identifier: free failures, then 1 s doubling up to 15 min. */
export class LoginBackoff {
  readonly #state = new Map<string, { failures: number; until: number; last: number }>()
  readonly #free: number

  /** `freeFailures`: failures allowed before the first wait. */
  constructor (freeFailures = 5) {
    this.#free = freeFailures
  }

  /** 0 when a login may be tried, else the seconds to wait. */
  blocked (id: string, now = Date.now()): number {
    const s = this.#state.get(id)
    return s === undefined || s.until <= now ? 0 : Math.ceil((s.until - now) / 1000)
  }

  failed (id: string, now = Date.now()): void {
    if (this.#state.size > 100_000) this.#state.clear() // bounded memory under a spraying attack
    let s = this.#state.get(id)
    if (s === undefined || now - s.last > FORGET_AFTER_MS) s = { failures: 0, until: 0, last: now }
    s.failures++
    s.last = now
    if (s.failures > this.#free) {
      s.until = now + Math.min(MAX_BLOCK_MS, 1000 * 2 ** (s.failures - this.#free - 1))
    }
    this.#state.set(id, s)
  }

  succeeded (id: string): void {
    this.#state.delete(id)
  }
}

/**
 * Throttles whoever guesses, never the one guessed at. Failures count per source address and per
 * (key, address) pair, never per key alone: guessing an edge's or the admin's secret from one
 * address slows that address down, while the real owner, from its own address, still gets in
 * with the right secret. A success clears only its pair, so an attacker holding one valid
 * credential cannot reset its address's count; the address's count fades after 15 minutes.
 */
export class LoginGuard {
  readonly #pair: LoginBackoff
  readonly #address: LoginBackoff

  constructor (opts: { perPair?: number; perAddress?: number } = {}) {
    this.#pair = new LoginBackoff(opts.perPair ?? 5)
    this.#address = new LoginBackoff(opts.perAddress ?? 30)
  }

  /** 0 when `key` may try a login from `address`, else the seconds to wait. */
  blocked (address: string, key: string, now = Date.now()): number {
    return Math.max(this.#address.blocked(address, now), this.#pair.blocked(`${key}\u0000${address}`, now))
  }

  failed (address: string, key: string, now = Date.now()): void {
    this.#address.failed(address, now)
    this.#pair.failed(`${key}\u0000${address}`, now)
  }

  succeeded (address: string, key: string): void {
    this.#pair.succeeded(`${key}\u0000${address}`)
  }
}
