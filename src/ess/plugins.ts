/**
 * The ESS plugin host. A plugin declares the object types it consumes and gets a logger, its own
 * folder and config, and the objects (metadata and data) one at a time, in order; never the store
 * or the broker. Its verdict becomes the delivery state the CSS sees: consumed, or error with the
 * plugin's reason. Objects not yet handled when the ESS stopped are handed over again at start.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from '../common/log.js'
import type { Registry } from '../common/metrics.js'
import type { ObjectKey, ObjectMetadata } from '../common/model.js'
import { readBlob, type Store } from '../storage/index.js'

export interface PluginObject {
  meta: ObjectMetadata
  data: Buffer
}
export type PluginVerdict = { state: 'consumed' } | { state: 'error'; message: string }
export interface PluginContext {
  log: Logger
  dataDir: string
  config: Readonly<Record<string, string>>
  /** The ESS's Prometheus registry, for the plugin's own series. */
  metrics?: Registry
}

export interface EdgePlugin {
  readonly name: string
  readonly objectTypes: readonly string[]
  start: (ctx: PluginContext) => Promise<void>
  handle: (obj: PluginObject) => Promise<PluginVerdict>
  /** Reported in the ESS health and heartbeats. */
  status: () => Record<string, unknown>
  stop: () => Promise<void>
}

export interface HostDeps {
  store: Store
  orgId: string
  /** Sends the verdict to the CSS (an ack: consumed or error). */
  report: (key: ObjectKey, instanceId: number, verdict: PluginVerdict) => void
  dir: string
  /** `plugin.key=value` pairs; each plugin gets its own keys without the prefix. */
  options: string
  log: Logger
  metrics?: Registry
}

/** Where a plugin is in its life; #19's lifecycle controls add `paused`. */
export type PluginState = 'starting' | 'running' | 'failed' | 'stopped'
export const PLUGIN_STATES: readonly PluginState[] = ['starting', 'running', 'failed', 'stopped']

/** Per plugin: its state and how many objects it consumed or refused since start. */
export interface PluginFigures {
  state: PluginState
  consumed: number
  refused: number
}

/** How long offers wait for the CSS's resync answer before they go ahead anyway. */
const SETTLE_FALLBACK_MS = 10_000

export class PluginHost {
  readonly #plugins: EdgePlugin[]
  readonly #deps: HostDeps
  readonly #queues = new Map<string, Promise<void>>()
  /** While the edge resyncs, offers are held (latest per object), so only the newest instance runs. */
  readonly #held = new Map<string, ObjectMetadata>()
  #paused = false
  /** Instances a plugin refused, with why (persisted: reported again after every reconnect). */
  #refused: Record<string, { instanceId: number; message: string }> = {}
  #fallback: NodeJS.Timeout | undefined
  readonly #figures = new Map<string, PluginFigures>()

  constructor (plugins: EdgePlugin[], deps: HostDeps) {
    this.#plugins = plugins
    this.#deps = deps
    for (const p of plugins) this.#figures.set(p.name, { state: 'starting', consumed: 0, refused: 0 })
  }

  /** State and verdict counts by plugin name (for metrics and health). */
  figures (): ReadonlyMap<string, Readonly<PluginFigures>> {
    return this.#figures
  }

  #fig (name: string): PluginFigures {
    let f = this.#figures.get(name)
    if (f === undefined) this.#figures.set(name, (f = { state: 'starting', consumed: 0, refused: 0 }))
    return f
  }

  async start (): Promise<void> {
    try {
      this.#refused = JSON.parse(await readFile(path.join(this.#deps.dir, 'refused.json'), 'utf8')) as Record<
        string,
        { instanceId: number; message: string }
      >
    } catch {}
    for (const p of this.#plugins) {
      const dataDir = path.join(this.#deps.dir, p.name)
      await mkdir(dataDir, { recursive: true })
      const config: Record<string, string> = {}
      for (const pair of this.#deps.options
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean)) {
        const [k = '', ...v] = pair.split('=')
        if (k.startsWith(`${p.name}.`)) config[k.slice(p.name.length + 1)] = v.join('=')
      }
      const log = this.#deps.log.child({ plugin: p.name })
      const metrics = this.#deps.metrics
      try {
        await p.start({ log, dataDir, config, ...(metrics === undefined ? {} : { metrics }) })
      } catch (err) {
        this.#fig(p.name).state = 'failed'
        throw err
      }
      this.#fig(p.name).state = 'running'
      // Objects received but never handled (the ESS stopped first) are handed over again.
      for (const type of p.objectTypes) {
        const page = await this.#deps.store.objects.list({
          orgId: this.#deps.orgId,
          objectType: type,
          statuses: ['completelyReceived'],
          limit: 1000
        })
        for (const o of page.items) this.offer(o.meta)
      }
    }
  }

  /**
   * Holds offers while the edge resyncs with the CSS (from its register until the CSS's answer):
   * instances queued by the broker while the edge was away arrive first, and only the newest of
   * each object should run.
   */
  pause (): void {
    this.#paused = true
    if (this.#fallback !== undefined) clearTimeout(this.#fallback)
    this.#fallback = setTimeout(() => {
      this.resume()
    }, SETTLE_FALLBACK_MS)
    this.#fallback.unref()
  }

  resume (): void {
    this.#paused = false
    if (this.#fallback !== undefined) clearTimeout(this.#fallback)
    const held = [...this.#held.values()]
    this.#held.clear()
    for (const m of held) this.offer(m)
  }

  /** A new instance was stored: the plugin for its type gets it (in order, one at a time). */
  offer (meta: ObjectMetadata): void {
    const p = this.#plugins.find((x) => x.objectTypes.includes(meta.objectType))
    if (p === undefined || meta.deleted === true) return
    if (this.#paused) {
      const k = `${meta.objectType}/${meta.objectID}`
      if ((this.#held.get(k)?.instanceID ?? 0) < meta.instanceID) this.#held.set(k, meta)
      return
    }
    const prev = this.#queues.get(p.name) ?? Promise.resolve()
    const next = prev
      .then(async () => {
        await this.#handle(p, meta)
      })
      .catch((err: unknown) => {
        this.#deps.log.error('Plugin failed on an object', { err, plugin: p.name, objectId: meta.objectID })
      })
    this.#queues.set(p.name, next)
  }

  async #handle (p: EdgePlugin, meta: ObjectMetadata): Promise<void> {
    const key: ObjectKey = { orgId: this.#deps.orgId, objectType: meta.objectType, objectId: meta.objectID }
    const cur = await this.#deps.store.objects.get(key)
    // Only the current instance matters: an older one queued behind a newer one is skipped.
    if (cur === undefined || cur.meta.instanceID !== meta.instanceID || cur.status !== 'completelyReceived') {
      return
    }
    const data =
      (cur.dataRef === undefined ? undefined : await readBlob(this.#deps.store.blobs, cur.dataRef)) ??
      Buffer.alloc(0)
    let verdict: PluginVerdict
    try {
      verdict = await p.handle({ meta: cur.meta, data })
    } catch (err) {
      verdict = { state: 'error', message: `plugin ${p.name} failed: ${(err as Error).message}` }
    }
    // Handled either way: received (error) or consumed, so it is not handed over again.
    try {
      await this.#deps.store.objects.setStatus(
        key,
        verdict.state === 'consumed' ? 'objconsumed' : 'objreceived',
        meta.instanceID
      )
    } catch (err) {
      // A newer instance arrived meanwhile; it is queued and gets its own verdict.
      if ((err as { code?: string }).code !== 'SYNC_ERR_PRECONDITION_FAILED') throw err
    }
    const k = `${meta.objectType}/${meta.objectID}`
    const fig = this.#fig(p.name)
    if (verdict.state === 'error') fig.refused++
    else fig.consumed++
    if (verdict.state === 'error') {
      this.#refused[k] = { instanceId: meta.instanceID, message: verdict.message.slice(0, 1000) }
    } else Reflect.deleteProperty(this.#refused, k)
    await mkdir(this.#deps.dir, { recursive: true })
    await writeFile(path.join(this.#deps.dir, 'refused.json.tmp'), JSON.stringify(this.#refused))
    await rename(path.join(this.#deps.dir, 'refused.json.tmp'), path.join(this.#deps.dir, 'refused.json'))
    this.#deps.report(key, meta.instanceID, verdict)
  }

  /** Why a plugin refused this instance, if it did. */
  refusal (objectType: string, objectId: string, instanceId: number): string | undefined {
    const r = this.#refused[`${objectType}/${objectId}`]
    return r?.instanceId === instanceId ? r.message : undefined
  }

  status (): Record<string, Record<string, unknown>> {
    return Object.fromEntries(this.#plugins.map((p) => [p.name, p.status()]))
  }

  async stop (): Promise<void> {
    if (this.#fallback !== undefined) clearTimeout(this.#fallback)
    await Promise.all([...this.#queues.values()])
    for (const p of this.#plugins) {
      await p.stop()
      this.#fig(p.name).state = 'stopped'
    }
  }
}
