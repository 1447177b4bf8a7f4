/**
 * The CSS end of the HTTP link, for edges that cannot reach the broker. Each polling node has one
 * session: a mailbox that receives every publish on the topics the node could subscribe to over
 * MQTT, kept until the node acknowledges it (QoS 1), plus the up path into the same handler as the
 * broker's. The protocol above is the same whatever the channel: register on each new session,
 * versions, signatures and chunk windows work unchanged.
 */
import type { Logger } from '../common/log.js'
import type { Frame } from '../common/protocol/frames.js'
import type { CloudTransport } from './types.js'

type UpHandler = (topic: string, payload: Buffer, clientUsername?: string) => Promise<void>
type PresenceHandler = (username: string, online: boolean) => void

export interface BridgeOptions {
  /** The down topics a node may receive (undefined: not a node). */
  topicsOf: (username: string) => string[] | undefined
  /** The node's own up topic. */
  upTopicOf: (username: string) => string | undefined
  /** A mailbox past this many bytes is reset: the node registers again and is resynced. */
  maxBytes: number
  /** A session not polled for this long is closed (the node went away without saying so). */
  idleMs: number
  log: Logger
}

/** One poll's answer: `fresh` when the session is new to this CSS (the node registers again). */
export interface PollAnswer {
  fresh: boolean
  frames: Frame[]
}

const MAX_ANSWER_BYTES = 8 * 1024 * 1024

class Mailbox {
  frames: Frame[] = []
  bytes = 0
  nextSeq = 1
  fresh = true
  lastSeen = Date.now()
  /** The highest seq ever answered: an ack beyond it is stale (from a session this CSS lost). */
  sent = 0
  wake: (() => void) | undefined

  readonly username: string
  readonly id: string
  readonly topics: string[]

  constructor (username: string, id: string, topics: string[]) {
    this.username = username
    this.id = id
    this.topics = topics
  }

  ack (upTo: number): void {
    const last = Math.min(upTo, this.sent)
    let n = 0
    while (n < this.frames.length && (this.frames[n]?.seq ?? Infinity) <= last) {
      this.bytes -= this.frames[n]?.payload.length ?? 0
      n++
    }
    if (n > 0) this.frames.splice(0, n)
  }

  /** Frames from the oldest unacknowledged, up to one answer's size (always at least one). */
  take (): Frame[] {
    const out: Frame[] = []
    let size = 0
    for (const f of this.frames) {
      if (out.length > 0 && size + f.payload.length > MAX_ANSWER_BYTES) break
      out.push(f)
      size += f.payload.length
    }
    this.sent = Math.max(this.sent, out.at(-1)?.seq ?? 0)
    return out
  }
}

export class HttpBridge {
  readonly #o: BridgeOptions
  readonly #byNode = new Map<string, Mailbox>()
  readonly #byTopic = new Map<string, Set<Mailbox>>()
  readonly #presence: PresenceHandler[] = []
  #up: UpHandler | undefined
  #watch: ((topic: string, on: boolean) => void) | undefined
  readonly #sweeper: NodeJS.Timeout

  constructor (opts: BridgeOptions) {
    this.#o = opts
    this.#sweeper = setInterval(() => {
      this.#sweep()
    }, Math.max(1000, opts.idleMs / 2))
    this.#sweeper.unref()
  }

  /** Copies a publish into the mailbox of every session that may receive its topic. */
  deliver (topic: string, payload: Buffer): void {
    const boxes = this.#byTopic.get(topic)
    if (boxes === undefined) return
    for (const box of boxes) {
      box.frames.push({ seq: box.nextSeq++, topic, payload })
      box.bytes += payload.length
      if (box.bytes > this.#o.maxBytes) {
        // A node that does not poll fast enough loses the queue, not the truth: the register
        // that follows a fresh session resyncs it exactly.
        this.#o.log.warn('HTTP link mailbox full; the node will resync', { node: box.username })
        box.frames = []
        box.bytes = 0
        box.fresh = true
      }
      box.wake?.()
    }
  }

  /** One long poll: acknowledges up to `ack`, then answers at once if anything waits, else within `waitMs`. */
  async poll (
    username: string,
    sessionId: string,
    ack: number,
    waitMs: number,
    gone: AbortSignal
  ): Promise<PollAnswer> {
    const box = this.#session(username, sessionId)
    box.lastSeen = Date.now()
    box.ack(ack)
    if (box.frames.length === 0 && !box.fresh) await this.#wait(box, waitMs, gone)
    box.lastSeen = Date.now()
    const fresh = box.fresh
    box.fresh = false
    return { fresh, frames: box.take() }
  }

  /** An up message from a node over HTTP: handled as the broker's are, on the node's own up topic. */
  async up (username: string, payload: Buffer): Promise<void> {
    const topic = this.#o.upTopicOf(username)
    if (topic === undefined || this.#up === undefined) return
    const box = this.#byNode.get(username)
    if (box !== undefined) box.lastSeen = Date.now()
    await this.#up(topic, payload, username)
  }

  /** The node says it leaves this channel (for example, back to MQTT). */
  end (username: string, sessionId: string): void {
    const box = this.#byNode.get(username)
    if (box?.id === sessionId) this.#remove(box, true)
  }

  /** Credentials revoked: the session ends now (each request is authenticated again anyway). */
  drop (username: string): void {
    const box = this.#byNode.get(username)
    if (box !== undefined) this.#remove(box, true)
  }

  online (username: string): boolean {
    return this.#byNode.has(username)
  }

  onMessage (h: UpHandler): void {
    this.#up = h
  }

  onPresence (h: PresenceHandler): void {
    this.#presence.push(h)
  }

  /** Told when a topic gains its first session here and loses its last (see withHttpBridge). */
  watch (fn: (topic: string, on: boolean) => void): void {
    this.#watch = fn
  }

  close (): void {
    clearInterval(this.#sweeper)
    for (const box of [...this.#byNode.values()]) this.#remove(box, false)
  }

  #session (username: string, sessionId: string): Mailbox {
    const old = this.#byNode.get(username)
    if (old?.id === sessionId) return old
    // A new session of the same node replaces the old one (its process restarted).
    if (old !== undefined) this.#remove(old, false)
    const topics = this.#o.topicsOf(username) ?? []
    const box = new Mailbox(username, sessionId, topics)
    this.#byNode.set(username, box)
    for (const t of topics) {
      let set = this.#byTopic.get(t)
      if (set === undefined) {
        this.#byTopic.set(t, (set = new Set()))
        this.#watch?.(t, true)
      }
      set.add(box)
    }
    if (old === undefined) for (const h of this.#presence) h(username, true)
    return box
  }

  async #wait (box: Mailbox, waitMs: number, gone: AbortSignal): Promise<void> {
    box.wake?.() // an older poll of this session still waiting answers now
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        gone.removeEventListener('abort', done)
        if (box.wake === done) box.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      gone.addEventListener('abort', done)
      box.wake = done
    })
  }

  #remove (box: Mailbox, report: boolean): void {
    this.#byNode.delete(box.username)
    for (const t of box.topics) {
      const set = this.#byTopic.get(t)
      set?.delete(box)
      if (set?.size === 0) {
        this.#byTopic.delete(t)
        this.#watch?.(t, false)
      }
    }
    box.wake?.()
    if (report) for (const h of this.#presence) h(box.username, false)
  }

  #sweep (): void {
    const before = Date.now() - this.#o.idleMs
    for (const box of [...this.#byNode.values()]) {
      if (box.wake === undefined && box.lastSeen < before) {
        this.#o.log.info('HTTP link session idle; closed', { node: box.username })
        this.#remove(box, true)
      }
    }
  }
}

/**
 * The broker and the bridge as one transport: a publish goes to both, a node counts as online
 * while either channel has it, and revoking a node cuts both.
 */
export function withHttpBridge (inner: CloudTransport, bridge: HttpBridge): CloudTransport {
  // On an external broker another CSS instance may publish to an edge polling this one: the bridge
  // follows its sessions' topics on the broker and gets every publish from there (ours included).
  const follows = inner.follow
  if (follows !== undefined) {
    bridge.watch((topic, on) => {
      follows.watch(topic, on)
    })
    follows.onMessage((topic, payload) => {
      bridge.deliver(topic, payload)
    })
  }
  return {
    urls: inner.urls,
    publish: async (topic, payload, qos) => {
      if (follows === undefined) bridge.deliver(topic, payload)
      await inner.publish(topic, payload, qos)
    },
    onMessage: (h) => {
      inner.onMessage(h)
      bridge.onMessage(h)
    },
    onPresence: (h) => {
      const on = new Map<string, Set<string>>()
      const track = (channel: string) => (username: string, online: boolean) => {
        const set = on.get(username) ?? new Set<string>()
        if (online) set.add(channel)
        else set.delete(channel)
        if (set.size === 0) on.delete(username)
        else on.set(username, set)
        h(username, set.size > 0)
      }
      inner.onPresence(track('mqtt'))
      bridge.onPresence(track('http'))
    },
    ...(inner.onSubscribed === undefined ? {} : { onSubscribed: inner.onSubscribed }),
    disconnect: (username) => {
      inner.disconnect(username)
      bridge.drop(username)
    },
    connected: inner.connected,
    close: async () => {
      bridge.close()
      await inner.close()
    }
  }
}
