/**
 * Time-driven object lifecycle on the CSS: expiration (the object is deleted, and every edge is
 * told), activation at `activationTime`, delete-on-delivery (`autodelete`), and removal of delete
 * tombstones that some destination never confirmed, after a grace period. Timers live in memory and
 * are rebuilt from the store at start, so nothing is missed across restarts.
 */
import type { Logger } from '../common/log.js'
import type { ObjectKey, StoredObject } from '../common/model.js'
import type { Store } from '../storage/index.js'

export interface LifecycleActions {
  delete: (key: ObjectKey) => Promise<void>
  activate: (key: ObjectKey) => Promise<void>
  remove: (key: ObjectKey) => Promise<void>
}

// setTimeout's largest delay; later deadlines re-arm when it fires.
const MAX_DELAY_MS = 2 ** 31 - 1

function keyString (k: ObjectKey): string {
  return `${k.orgId}/${k.objectType}/${k.objectId}`
}

function time (iso: string | undefined): number | undefined {
  if (iso === undefined || iso === '') return undefined
  const t = Date.parse(iso)
  return Number.isNaN(t) ? undefined : t
}

export class Lifecycle {
  readonly #due = new Map<string, { at: number; key: ObjectKey }>()
  readonly #store: Store
  readonly #actions: LifecycleActions
  readonly #deletedGraceMs: number
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #firing = false
  #closed = false

  constructor (store: Store, actions: LifecycleActions, opts: { deletedGraceMs: number }, log: Logger) {
    this.#store = store
    this.#actions = actions
    this.#deletedGraceMs = opts.deletedGraceMs
    this.#log = log
  }

  /** Schedules every object's next deadline (one pass over the store). */
  async start (): Promise<void> {
    for (const orgId of await this.#store.objects.orgs()) {
      let cursor: string | undefined
      do {
        const page = await this.#store.objects.list({
          orgId,
          limit: 1000,
          cursor
        })
        for (const o of page.items) this.#schedule(o)
        cursor = page.next
      } while (cursor !== undefined)
    }
    this.#arm()
  }

  /** Called for every new instance: (re)schedules its next deadline. */
  consider (obj: StoredObject): void {
    this.#schedule(obj)
    this.#arm()
  }

  close (): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }

  /** The next moment something must happen to this object, if any. */
  #deadline (obj: StoredObject): number | undefined {
    const m = obj.meta
    if (m.deleted === true) {
      const at = time(m.lastUpdate)
      return at === undefined ? undefined : at + this.#deletedGraceMs
    }
    const times = [time(m.expiration), m.inactive === true ? time(m.activationTime) : undefined].filter(
      (t): t is number => t !== undefined
    )
    return times.length === 0 ? undefined : Math.min(...times)
  }

  #schedule (obj: StoredObject): void {
    const at = this.#deadline(obj)
    const k = keyString(obj.key)
    if (at === undefined) this.#due.delete(k)
    else this.#due.set(k, { at, key: obj.key })
  }

  #arm (): void {
    if (this.#closed || this.#firing) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    let next = Infinity
    for (const d of this.#due.values()) next = Math.min(next, d.at)
    if (next === Infinity) return
    this.#timer = setTimeout(
      () => {
        this.#fire().catch((err: unknown) => {
          this.#log.error('Lifecycle pass failed', { err })
        })
      },
      Math.min(Math.max(next - Date.now(), 0), MAX_DELAY_MS)
    )
    this.#timer.unref()
  }

  async #fire (): Promise<void> {
    this.#firing = true
    try {
      const now = Date.now()
      for (const [k, d] of [...this.#due]) {
        if (d.at > now || this.#closed) continue
        this.#due.delete(k)
        try {
          await this.#act(d.key, now)
        } catch (err) {
          this.#log.error('Lifecycle action failed; retrying in a minute', { err, object: k })
          this.#due.set(k, { at: now + 60_000, key: d.key })
        }
      }
    } finally {
      this.#firing = false
      this.#arm()
    }
  }

  async #act (key: ObjectKey, now: number): Promise<void> {
    const obj = await this.#store.objects.get(key)
    if (obj === undefined) return
    const m = obj.meta
    const log = this.#log.child({ object: keyString(key) })
    if (m.deleted === true) {
      if ((time(m.lastUpdate) ?? now) + this.#deletedGraceMs <= now) {
        log.info('Removing a deleted object whose destinations did not all confirm within the grace period')
        await this.#actions.remove(key)
        return
      }
    } else if ((time(m.expiration) ?? Infinity) <= now) {
      log.info('Object expired: deleting it everywhere')
      await this.#actions.delete(key)
    } else if (m.inactive === true && (time(m.activationTime) ?? Infinity) <= now) {
      log.info('Activation time reached')
      await this.#actions.activate(key)
    }
    // Whatever the action produced (a new instance, a tombstone) comes back through consider();
    // re-reading here covers an action that changed nothing.
    const after = await this.#store.objects.get(key)
    if (after !== undefined) this.#schedule(after)
  }
}
