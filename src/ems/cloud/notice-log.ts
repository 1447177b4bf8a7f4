/**
 * Config-change notices shared by CSS instances: an edge's seed WebSocket may be open on another
 * instance than the one that made the change. Each instance posts its notices to the store's
 * settings (`ems-notice/<time>-<instance>-<n>`, kept `keepMs`); every instance lists them every
 * `pollMs` and hands others' notices to the sockets it has open.
 */
import { randomBytes } from 'node:crypto'
import type { Logger } from '../../common/log.js'
import type { SettingStore } from '../../storage/index.js'

export interface Notice {
  orgId: string
  edgeId: string
  version: number
}

const PREFIX = 'ems-notice/'

export class NoticeLog {
  readonly #settings: SettingStore
  readonly #deliver: (n: Notice) => void
  readonly #wanted: () => boolean
  readonly #pollMs: number
  readonly #keepMs: number
  readonly #log: Logger
  readonly #self = randomBytes(4).toString('hex')
  /** Others' notices already delivered (names still listed); undefined until the first look. */
  #seen: Set<string> | undefined
  #n = 0
  #timer: NodeJS.Timeout | undefined
  #busy = false

  /** `wanted`: whether this instance has sockets open (no sockets, no polling). */
  constructor (
    settings: SettingStore,
    deliver: (n: Notice) => void,
    wanted: () => boolean,
    opts: { pollMs: number; keepMs: number },
    log: Logger
  ) {
    this.#settings = settings
    this.#deliver = deliver
    this.#wanted = wanted
    this.#pollMs = opts.pollMs
    this.#keepMs = opts.keepMs
    this.#log = log
  }

  start (): void {
    this.#timer = setInterval(() => {
      if (this.#busy) return
      this.#busy = true
      this.#poll()
        .catch((err: unknown) => {
          this.#log.warn('Could not read config notices of other instances', { err })
        })
        .finally(() => {
          this.#busy = false
        })
    }, this.#pollMs)
    this.#timer.unref()
  }

  close (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
  }

  async post (n: Notice): Promise<void> {
    const name = `${PREFIX}${String(Date.now()).padStart(15, '0')}-${this.#self}-${this.#n++}`
    await this.#settings.set(name, JSON.stringify(n))
  }

  async #poll (): Promise<void> {
    const entries = await this.#settings.list(PREFIX)
    await this.#prune(entries)
    // Notices from before this instance first looked are old news (sockets fetch the config when
    // they connect); later ones go to the sockets open now, if any.
    const first = this.#seen === undefined || !this.#wanted()
    const seen = this.#seen ?? new Set<string>()
    const listed = new Set<string>()
    for (const [name, v] of entries) {
      listed.add(name)
      if (seen.has(name) || name.includes(`-${this.#self}-`)) continue
      seen.add(name)
      if (!first) this.#deliver(JSON.parse(v) as Notice)
    }
    for (const name of seen) if (!listed.has(name)) seen.delete(name)
    this.#seen = seen
  }

  /** Each instance removes its own notices once they are `keepMs` old (by its own clock). */
  async #prune (entries: Array<[string, string]>): Promise<void> {
    const cutoff = Date.now() - this.#keepMs
    for (const [name] of entries) {
      if (!name.includes(`-${this.#self}-`)) continue
      if (Number(name.slice(PREFIX.length, PREFIX.length + 15)) < cutoff) await this.#settings.remove(name)
    }
  }
}
