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
import { NotFoundError, SyncError, SyncErrorCode } from '../common/errors.js'

export interface PluginObject {
  meta: ObjectMetadata
  data: Buffer
}
export type PluginVerdict = { state: 'consumed' } | { state: 'error'; message: string }
/**
 * `deferred`: the plugin was stopped before it could decide (e.g. while it held a config for a
 * maintenance window); nothing is reported and the object is handed over again at the next start.
 */
export type PluginAnswer = PluginVerdict | { state: 'deferred' }
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
  handle: (obj: PluginObject) => Promise<PluginAnswer>
  /** Reported in the ESS health and heartbeats. */
  status: () => Record<string, unknown>
  stop: () => Promise<void>
  /** Asked before a stop waits for the object in hand: stop waiting (e.g. for a window). */
  interrupt?: () => void
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
  /** Something the plugins report changed (an object now waits for a paused plugin). */
  changed?: () => void
}

/**
 * Where a plugin is in its life. `paused`: it keeps running what it runs (the EMS runtime keeps its
 * last applied config) but new objects wait for `resume`; `stopped`: its `stop` ran and new objects
 * wait for `start`.
 */
export type PluginState = 'starting' | 'running' | 'paused' | 'failed' | 'stopped'
export const PLUGIN_STATES: readonly PluginState[] = ['starting', 'running', 'paused', 'failed', 'stopped']
/** What an operator may ask of a plugin (ESS local API, syncctl, a command from the CSS). */
export type PluginAction = 'start' | 'stop' | 'pause' | 'resume'
export const PLUGIN_ACTIONS: readonly PluginAction[] = ['start', 'stop', 'pause', 'resume']

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
  /** Offers for a plugin that is paused or stopped, latest per object, handed over when it runs again. */
  readonly #parked = new Map<string, Map<string, ObjectMetadata>>()
  #paused = false
  /** Instances a plugin refused, with why (persisted: reported again after every reconnect). */
  #refused: Record<string, { instanceId: number; message: string }> = {}
  /** What an operator asked for, per plugin (persisted: a paused plugin stays paused after a restart). */
  #wanted: Record<string, 'paused' | 'stopped'> = {}
  #fallback: NodeJS.Timeout | undefined
  readonly #figures = new Map<string, PluginFigures>()
  /** Serializes operator actions (one start/stop at a time). */
  #control: Promise<unknown> = Promise.resolve()

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
    this.#refused = await readJsonFile(path.join(this.#deps.dir, 'refused.json')) ?? {}
    this.#wanted = await readJsonFile(path.join(this.#deps.dir, 'lifecycle.json')) ?? {}
    for (const p of this.#plugins) {
      if (this.#wanted[p.name] === 'stopped') {
        this.#fig(p.name).state = 'stopped'
        this.#deps.log.warn('Plugin left stopped, as an operator asked', { plugin: p.name })
      } else {
        await this.#startOne(p)
      }
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

  async #startOne (p: EdgePlugin): Promise<void> {
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
    this.#fig(p.name).state = 'starting'
    try {
      await p.start({ log, dataDir, config, ...(metrics === undefined ? {} : { metrics }) })
    } catch (err) {
      this.#fig(p.name).state = 'failed'
      throw err
    }
    this.#fig(p.name).state = this.#wanted[p.name] === 'paused' ? 'paused' : 'running'
  }

  /**
   * An operator's action on one plugin. start: run its `start` (after a stop or a failure);
   * stop: finish what it handles, then its `stop`; pause: it keeps running what it runs, new
   * objects wait; resume: it gets them (only the newest instance of each). Idempotent: pausing a
   * paused plugin is not an error. Returns the state reached.
   */
  async control (name: string, action: PluginAction): Promise<PluginState> {
    const run = this.#control.then(async () => await this.#apply(name, action))
    this.#control = run.catch(() => {})
    return await run
  }

  async #apply (name: string, action: PluginAction): Promise<PluginState> {
    const p = this.#plugins.find((x) => x.name === name)
    if (p === undefined) {
      const known = this.#plugins.map((x) => x.name).join(', ') || 'none'
      throw new NotFoundError(`No plugin ${name} on this edge (plugins: ${known})`)
    }
    const fig = this.#fig(name)
    const was = fig.state
    const conflict = (why: string): SyncError =>
      new SyncError(SyncErrorCode.CONFLICT, `Cannot ${action} plugin ${name}: ${why}`)
    switch (action) {
      case 'pause':
        if (was === 'stopped' || was === 'failed') throw conflict(`it is ${was}; start it first`)
        await this.#want(name, 'paused')
        fig.state = 'paused'
        break
      case 'resume':
        if (was === 'stopped' || was === 'failed') throw conflict(`it is ${was}; use start`)
        await this.#want(name, undefined)
        fig.state = 'running'
        break
      case 'stop':
        if (was === 'stopped') return was
        await this.#want(name, 'stopped')
        fig.state = 'stopped' // new offers park from here on
        p.interrupt?.()
        await (this.#queues.get(name) ?? Promise.resolve())
        await p.stop()
        break
      case 'start':
        if (was === 'running' || was === 'paused') return was
        await this.#want(name, undefined)
        try {
          await this.#startOne(p)
        } catch (err) {
          // Its own error, said as ours: the operator sees why, and may start it again.
          throw new SyncError(SyncErrorCode.UNAVAILABLE, `Plugin ${name} did not start: ${(err as Error).message}`, { cause: err })
        }
        break
    }
    this.#deps.log.info('Plugin lifecycle', { plugin: name, action, from: was, to: fig.state })
    if (fig.state === 'running') this.#unpark(p)
    return fig.state
  }

  async #want (name: string, state: 'paused' | 'stopped' | undefined): Promise<void> {
    if (state === undefined) Reflect.deleteProperty(this.#wanted, name)
    else this.#wanted[name] = state
    await writeJsonFile(path.join(this.#deps.dir, 'lifecycle.json'), this.#wanted)
  }

  #unpark (p: EdgePlugin): void {
    const parked = [...(this.#parked.get(p.name)?.values() ?? [])]
    this.#parked.delete(p.name)
    for (const m of parked) this.offer(m)
  }

  /** Objects waiting for a paused or stopped plugin, by plugin name. */
  waiting (name: string): number {
    return this.#parked.get(name)?.size ?? 0
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
    const k = `${meta.objectType}/${meta.objectID}`
    if (this.#paused) {
      if ((this.#held.get(k)?.instanceID ?? 0) < meta.instanceID) this.#held.set(k, meta)
      return
    }
    if (this.#fig(p.name).state !== 'running') {
      let parked = this.#parked.get(p.name)
      if (parked === undefined) this.#parked.set(p.name, (parked = new Map()))
      if ((parked.get(k)?.instanceID ?? 0) < meta.instanceID) parked.set(k, meta)
      this.#deps.changed?.()
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
    // Paused or stopped while this waited in the queue: it waits for the plugin instead.
    if (this.#fig(p.name).state !== 'running') {
      this.offer(meta)
      return
    }
    const key: ObjectKey = { orgId: this.#deps.orgId, objectType: meta.objectType, objectId: meta.objectID }
    const cur = await this.#deps.store.objects.get(key)
    // Only the current instance matters: an older one queued behind a newer one is skipped.
    if (cur === undefined || cur.meta.instanceID !== meta.instanceID || cur.status !== 'completelyReceived') {
      return
    }
    const data =
      (cur.dataRef === undefined ? undefined : await readBlob(this.#deps.store.blobs, cur.dataRef)) ??
      Buffer.alloc(0)
    let answer: PluginAnswer
    try {
      answer = await p.handle({ meta: cur.meta, data })
    } catch (err) {
      answer = { state: 'error', message: `plugin ${p.name} failed: ${(err as Error).message}` }
    }
    if (answer.state === 'deferred') return
    const verdict: PluginVerdict = answer
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
    await writeJsonFile(path.join(this.#deps.dir, 'refused.json'), this.#refused)
    this.#deps.report(key, meta.instanceID, verdict)
  }

  /** Why a plugin refused this instance, if it did. */
  refusal (objectType: string, objectId: string, instanceId: number): string | undefined {
    const r = this.#refused[`${objectType}/${objectId}`]
    return r?.instanceId === instanceId ? r.message : undefined
  }

  /** Each plugin's own report with its lifecycle state and how many objects wait for it. */
  status (): Record<string, Record<string, unknown>> {
    return Object.fromEntries(
      this.#plugins.map((p) => [
        p.name,
        { ...p.status(), state: this.#fig(p.name).state, waiting: this.waiting(p.name) }
      ])
    )
  }

  async stop (): Promise<void> {
    if (this.#fallback !== undefined) clearTimeout(this.#fallback)
    for (const p of this.#plugins) p.interrupt?.()
    await Promise.all([...this.#queues.values()])
    for (const p of this.#plugins) {
      if (this.#fig(p.name).state !== 'stopped') await p.stop()
      this.#fig(p.name).state = 'stopped'
    }
  }
}

async function readJsonFile<T> (file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

/** Written whole, then renamed: a crash leaves the old file or the new one, never half of one. */
async function writeJsonFile (file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  await writeFile(`${file}.tmp`, JSON.stringify(value))
  await rename(`${file}.tmp`, file)
}
