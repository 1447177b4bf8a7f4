/**
 * The leader lease for the CSS's periodic sweeps (offline alerts, EMS freshness, the object
 * lifecycle's store scan). Every instance runs the same loop: a holder renews every third of the
 * lease; the others look, and take the next term (a compare-and-set by creation, see
 * storage/types.ts `Lease`) once the current one lapsed. A sweep runs through `fenced`, which
 * checks in the store that this instance's term is still the newest right before the work, so a
 * holder that was paused past its expiry (GC, a frozen VM) does not act after losing the lease.
 * Clocks: expiry is judged by wall time, so instances must run NTP (as any lease-based system).
 */
import type { Logger } from '../common/log.js'
import type { Lease, LeaseStore } from '../storage/index.js'

export const SWEEPS_LEASE = 'css-sweeps'

export interface LeaderStatus {
  /** This instance's name. */
  self: string
  leader: boolean
  /** The newest term seen: who holds it, its fencing version and expiry (ISO). */
  holder?: string
  version?: number
  expiresAt?: string
}

export class Leader {
  readonly #leases: LeaseStore
  readonly #self: string
  readonly #ttlMs: number
  readonly #log: Logger
  readonly #gained: Array<() => Promise<void>> = []
  #mine: Lease | undefined
  #seen: Lease | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  #tick: Promise<void> = Promise.resolve()

  constructor (leases: LeaseStore, self: string, ttlMs: number, log: Logger) {
    this.#leases = leases
    this.#self = self
    this.#ttlMs = ttlMs
    this.#log = log
  }

  /** Called each time this instance becomes the leader (e.g. to rescan what the sweeps cover). */
  onGained (fn: () => Promise<void>): void {
    this.#gained.push(fn)
  }

  /** First attempt now (a lone instance leads from its start), then every third of the lease. */
  async start (): Promise<void> {
    await this.#step()
    this.#timer = setInterval(() => {
      this.#tick = this.#step()
    }, Math.max(50, Math.floor(this.#ttlMs / 3)))
    this.#timer.unref()
  }

  /** True while this instance holds an unexpired term (by its own clock, with a margin). */
  get isLeader (): boolean {
    return this.#mine !== undefined && Date.now() < this.#mine.expiresAt - this.#ttlMs / 10
  }

  status (): LeaderStatus {
    const seen = this.#mine ?? this.#seen
    return {
      self: this.#self,
      leader: this.isLeader,
      ...(seen === undefined
        ? {}
        : { holder: seen.holder, version: seen.version, expiresAt: new Date(seen.expiresAt).toISOString() })
    }
  }

  /**
   * Runs `work` only as the leader, after checking in the store that no newer term exists (the
   * fencing check). Returns whether it ran.
   */
  async fenced (work: () => Promise<void>): Promise<boolean> {
    const mine = this.#mine
    if (mine === undefined || !this.isLeader) return false
    const cur = await this.#leases.current(mine.name)
    if (cur?.version !== mine.version || cur.holder !== this.#self) {
      this.#lost(cur)
      return false
    }
    await work()
    return true
  }

  /** Gives the lease up (expires the term now) so another instance takes over at once. */
  async stop (): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await this.#tick
    const mine = this.#mine
    this.#mine = undefined
    if (mine !== undefined) {
      await this.#leases.renew({ ...mine, expiresAt: 0 }).catch((err: unknown) => {
        this.#log.warn('Could not resign the lease; it lapses by itself', { err })
      })
      this.#log.info('Resigned the lease', { version: mine.version })
    }
  }

  async #step (): Promise<void> {
    if (this.#stopped) return
    try {
      const mine = this.#mine
      if (mine !== undefined) {
        const next = { ...mine, expiresAt: Date.now() + this.#ttlMs }
        if (await this.#leases.renew(next)) this.#mine = next
        else this.#lost(await this.#leases.current(mine.name))
        return
      }
      const cur = await this.#leases.current(SWEEPS_LEASE)
      this.#seen = cur
      // A live term of our own name is our previous life (a crash and restart; ids are unique per
      // running instance): take the next term now instead of waiting for it to lapse.
      if (cur !== undefined && cur.expiresAt > Date.now() && cur.holder !== this.#self) return
      const term = {
        name: SWEEPS_LEASE,
        version: (cur?.version ?? 0) + 1,
        holder: this.#self,
        expiresAt: Date.now() + this.#ttlMs
      }
      if (!(await this.#leases.claim(term))) return
      this.#mine = term
      this.#log.info('Took the lease', { version: term.version, from: cur?.holder })
      for (const fn of this.#gained) await fn()
    } catch (err) {
      // The store is away: a holder keeps its term until it expires, then stops leading.
      this.#log.warn('Lease step failed', { err })
    }
  }

  #lost (cur: Lease | undefined): void {
    if (this.#mine === undefined) return
    this.#log.warn('Lost the lease', { version: this.#mine.version, now: cur?.version, holder: cur?.holder })
    this.#mine = undefined
    this.#seen = cur
  }
}
