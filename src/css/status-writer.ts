/**
 * Group commit of delivery records and heartbeats: callers enqueue and await; one bulk write per
 * short window serves them all. Nothing resolves before its write is durable.
 */
import type { DeliveryUpdate, DestinationKey } from '../common/model.js'
import type { Logger } from '../common/log.js'
import type { NodeTouch, Store } from '../storage/index.js'

const WINDOW_MS = 5

interface Waiter {
  resolve: () => void
  reject: (e: unknown) => void
}

export class StatusWriter {
  readonly #store: Store
  readonly #log: Logger
  #deliveries: DeliveryUpdate[] = []
  #touches = new Map<string, NodeTouch>()
  #waiters: Waiter[] = []
  #timer: NodeJS.Timeout | undefined
  #flushing: Promise<void> = Promise.resolve()
  /** Told the orgs each durable write touched (the dashboard's live updates). */
  onWritten: ((orgIds: Set<string>) => void) | undefined

  constructor (store: Store, log: Logger) {
    this.#store = store
    this.#log = log
  }

  async deliveries (updates: DeliveryUpdate[]): Promise<void> {
    if (updates.length === 0) return
    for (const u of updates) this.#deliveries.push(u)
    await this.#wait()
  }

  /** A heartbeat or presence change; `status` is what the node's plugins reported, if anything. */
  async touch (node: DestinationKey, online: boolean, status?: NodeTouch['status']): Promise<void> {
    const k = `${node.orgId}/${node.destinationType}/${node.destinationId}`
    const pending = status ?? this.#touches.get(k)?.status
    this.#touches.set(k, {
      node,
      at: new Date().toISOString(),
      online,
      ...(pending === undefined ? {} : { status: pending })
    })
    await this.#wait()
  }

  async #wait (): Promise<void> {
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      this.#flushing = this.#flushing.then(async () => {
        await this.#flush()
      })
    }, WINDOW_MS)
    await p
  }

  async #flush (): Promise<void> {
    const deliveries = this.#deliveries
    const touches = [...this.#touches.values()]
    const waiters = this.#waiters
    this.#deliveries = []
    this.#touches = new Map()
    this.#waiters = []
    try {
      if (deliveries.length > 0) await this.#store.deliveries.upsertMany(deliveries)
      if (touches.length > 0) await this.#store.nodes.touchMany(touches)
      for (const w of waiters) w.resolve()
      if (this.onWritten !== undefined) {
        this.onWritten(new Set([...deliveries.map((d) => d.orgId), ...touches.map((t) => t.node.orgId)]))
      }
    } catch (err) {
      this.#log.error('Cannot write delivery status', { err, records: deliveries.length })
      for (const w of waiters) w.reject(err)
    }
  }

  /** Waits for everything queued so far. */
  async drain (): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#flushing = this.#flushing.then(async () => {
        await this.#flush()
      })
    }
    await this.#flushing
  }
}
