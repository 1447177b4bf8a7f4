/**
 * EMS configuration in the cloud. Layers (org defaults, site overrides, edge exceptions) are kept as
 * CSS-internal objects (`_ems-layer`, with history); each edge's effective config is the merge of
 * its layers, validated, versioned and published as an `ems-config` object addressed to that edge
 * (signed and delivered like any object). A change that would make any affected edge's config
 * invalid is refused whole: nothing is written or published.
 */
import { EventEmitter } from 'node:events'
import { NotFoundError, SyncError, SyncErrorCode, ValidationError } from '../../common/errors.js'
import type { Logger } from '../../common/log.js'
import type { NodeRecord, ObjectKey } from '../../common/model.js'
import { readBlob, type Store } from '../../storage/index.js'
import { forEachLimit } from '../../common/concurrency.js'
import { diff, mergeLayers, setPath, type Change, type Effective, type Json, type Layer } from './layers.js'
import { validateEmsConfig, type EmsProblem } from '../common/validate.js'
import { isOnline } from '../../css/presence.js'
import { configHash } from '../common/config-hash.js'

const PUBLISH_IN_FLIGHT = 32

export const LAYER_TYPE = '_ems-layer'
export const CONFIG_TYPE = 'ems-config'
type Obj = Record<string, Json>

/** Publishes object instances (the CSS object service). */
export interface ConfigPublisher {
  put: (
    key: ObjectKey,
    meta: Record<string, unknown>,
    data: Buffer,
    owner: string
  ) => Promise<{ meta: { instanceID: number } }>
}

export interface LayerRef {
  kind: 'org' | 'site' | 'edge'
  id: string
}

export function parseLayer (s: string): LayerRef {
  if (s === 'org') return { kind: 'org', id: '' }
  const m = /^(site|edge):([A-Za-z0-9][A-Za-z0-9_.@:+-]{0,127})$/.exec(s)
  if (m === null) throw new ValidationError(`Layer must be org, site:<id> or edge:<id>, not ${s}`)
  return { kind: m[1] as 'site' | 'edge', id: m[2] ?? '' }
}
const layerName = (l: LayerRef): string => (l.kind === 'org' ? 'org' : `${l.kind}:${l.id}`)
const layerKey = (orgId: string, l: LayerRef): ObjectKey => ({
  orgId,
  objectType: LAYER_TYPE,
  objectId: l.kind === 'org' ? 'org' : `${l.kind}.${l.id}`
})
const configKey = (orgId: string, edgeId: string): ObjectKey => ({
  orgId,
  objectType: CONFIG_TYPE,
  objectId: edgeId
})

/** A copy of a layer document with one value set at a keyed path (a bulk change); a bad path is a 400. */
export function withValueAt (doc: Obj, path: string, value: Json): Obj {
  const next = structuredClone(doc)
  try {
    setPath(next, path, value)
  } catch (err) {
    throw new ValidationError(`/path: ${(err as Error).message}`)
  }
  return next
}

/** The config content without what changes with every version (or with how it is delivered). */
function body (c: Obj): Obj {
  const { version: _v, timestamp: _t, edge_id: _e, apply_windows: _w, ...rest } = c
  return rest
}

export interface EdgeOutcome {
  edge: string
  changes: Change[]
  version?: number
  problems?: EmsProblem[]
  incomplete?: string[]
  /** The edge was rolled back and stays on that version until released; `changes` wait for it. */
  pinned?: Pin
}

/** A rolled-back edge: layer changes are not published to it until an operator releases it. */
export interface Pin {
  version: number
  from: number
  actor: string
  since: string
}

const pinKey = (orgId: string, edgeId: string): ObjectKey => ({
  orgId,
  objectType: LAYER_TYPE,
  objectId: `pin.${edgeId}`
})

/** Sections every effective config needs; until its layers provide them all, an edge gets nothing. */
const SECTIONS = ['core_cycle', 'scheduler', 'modbus_devices', 'alarms'] as const

export class EmsService {
  /** `published` ({ orgId, edgeId, version }) after each new effective config. */
  readonly events = new EventEmitter()
  readonly #store: Store
  readonly #pub: ConfigPublisher
  readonly #edgeType: string
  readonly #offlineAfterMs: number
  readonly #log: Logger

  constructor (
    store: Store,
    pub: ConfigPublisher,
    opts: { edgeType: string; offlineAfterMs?: number },
    log: Logger
  ) {
    this.#store = store
    this.#pub = pub
    this.#edgeType = opts.edgeType
    this.#offlineAfterMs = opts.offlineAfterMs ?? 120_000
    this.#log = log
  }

  async #readJson (dataRef: string | undefined): Promise<Obj | undefined> {
    if (dataRef === undefined) return undefined
    const data = await readBlob(this.#store.blobs, dataRef)
    return data === undefined ? undefined : (JSON.parse(data.toString('utf8')) as Obj)
  }

  async getLayer (orgId: string, l: LayerRef): Promise<{ doc: Obj; instanceID: number } | undefined> {
    const o = await this.#store.objects.get(layerKey(orgId, l))
    if (o === undefined || o.meta.deleted === true) return undefined
    return { doc: (await this.#readJson(o.dataRef)) ?? {}, instanceID: o.meta.instanceID }
  }

  async layerHistory (
    orgId: string,
    l: LayerRef
  ): Promise<Array<{ instanceID: number; lastUpdate?: string; doc: Obj }>> {
    const h = await this.#store.objects.history(layerKey(orgId, l))
    return await Promise.all(
      h.map(async (o) => ({
        instanceID: o.meta.instanceID,
        ...(o.meta.lastUpdate === undefined ? {} : { lastUpdate: o.meta.lastUpdate }),
        doc: (await this.#readJson(o.dataRef)) ?? {}
      }))
    )
  }

  /** The org's EMS edges: its nodes of the EMS destination type. */
  async edges (orgId: string): Promise<NodeRecord[]> {
    const out: NodeRecord[] = []
    let cursor: string | undefined
    do {
      const page = await this.#store.nodes.list({
        orgId,
        destinationType: this.#edgeType,
        limit: 1000,
        ...(cursor === undefined ? {} : { cursor })
      })
      out.push(...page.items)
      cursor = page.next
    } while (cursor !== undefined)
    return out
  }

  async #node (orgId: string, edgeId: string): Promise<NodeRecord> {
    const n = await this.#store.nodes.get({ orgId, destinationType: this.#edgeType, destinationId: edgeId })
    if (n === undefined) {
      throw new NotFoundError(
        `No EMS edge ${edgeId} in org ${orgId} (an edge appears once its ESS registered)`
      )
    }
    return n
  }

  /**
   * The layers of one edge, with `override` in place of the stored version of one layer. `cache`
   * shares layer reads across the edges of one change (a site change reads the org layer once).
   */
  async #layersOf (
    orgId: string,
    node: NodeRecord,
    override?: { ref: LayerRef; doc: Obj },
    cache = new Map<string, Obj | undefined>()
  ): Promise<Layer[]> {
    const site = node.properties.site
    const refs: LayerRef[] = [
      { kind: 'org', id: '' },
      ...(site === undefined ? [] : [{ kind: 'site' as const, id: site }]),
      { kind: 'edge', id: node.destinationId }
    ]
    const out: Layer[] = []
    for (const ref of refs) {
      const name = layerName(ref)
      if (override !== undefined && layerName(override.ref) === name) {
        out.push({ name, doc: override.doc })
        continue
      }
      if (!cache.has(name)) cache.set(name, (await this.getLayer(orgId, ref))?.doc)
      const doc = cache.get(name)
      if (doc !== undefined) out.push({ name, doc })
    }
    return out
  }

  /** The rollback pin of an edge, if it has one. */
  async pin (orgId: string, edgeId: string): Promise<Pin | undefined> {
    const o = await this.#store.objects.get(pinKey(orgId, edgeId))
    if (o === undefined || o.meta.deleted === true) return undefined
    return (await this.#readJson(o.dataRef)) as Pin | undefined
  }

  /**
   * Every rollback pin of an org, by edge: one listing of the EMS's own objects instead of a read
   * per edge (a change to a site of 1,000 edges asks about each of them).
   */
  async #pins (orgId: string): Promise<Map<string, Pin>> {
    const out = new Map<string, Pin>()
    let cursor: string | undefined
    do {
      const page = await this.#store.objects.list({ orgId, objectType: LAYER_TYPE, limit: 1000, cursor })
      for (const o of page.items) {
        if (!o.key.objectId.startsWith('pin.') || o.meta.deleted === true) continue
        const pin = (await this.#readJson(o.dataRef)) as Pin | undefined
        if (pin !== undefined) out.set(o.key.objectId.slice('pin.'.length), pin)
      }
      cursor = page.next
    } while (cursor !== undefined)
    return out
  }

  async #setPin (orgId: string, edgeId: string, pin: Pin | undefined): Promise<void> {
    const key = pinKey(orgId, edgeId)
    if (pin === undefined) {
      for (const ref of await this.#store.objects.remove(key)) await this.#store.blobs.remove(ref)
      return
    }
    await this.#putJson(key, pin, pin.actor)
  }

  /** Stores a JSON document as an object of the EMS's own layer type (layers and pins). */
  async #putJson (key: ObjectKey, doc: unknown, actor: string): Promise<void> {
    const blob = await this.#store.blobs.write([Buffer.from(JSON.stringify(doc))])
    await this.#store.objects.put(key, () => ({
      meta: {
        objectID: key.objectId,
        objectType: LAYER_TYPE,
        destinationOrgID: key.orgId,
        dataID: 0,
        objectSize: blob.size,
        dataHash: blob.sha256,
        contentType: 'application/json',
        ownerID: actor
      },
      status: 'ready',
      dataRef: blob.ref
    }))
  }

  async effective (orgId: string, edgeId: string): Promise<Effective> {
    return mergeLayers(await this.#layersOf(orgId, await this.#node(orgId, edgeId)))
  }

  /** The published config of an edge and the object instance carrying it. */
  async current (
    orgId: string,
    edgeId: string
  ): Promise<{ config: Obj; version: number; instanceId: number } | undefined> {
    const o = await this.#store.objects.get(configKey(orgId, edgeId))
    if (o === undefined || o.meta.deleted === true) return undefined
    const config = await this.#readJson(o.dataRef)
    return config === undefined
      ? undefined
      : { config, version: Number(o.meta.version ?? 0), instanceId: o.meta.instanceID }
  }

  /** A retained earlier version of an edge's config. */
  async at (orgId: string, edgeId: string, version: number): Promise<Obj | undefined> {
    const old = (await this.#store.objects.history(configKey(orgId, edgeId))).find(
      (o) => Number(o.meta.version) === version
    )
    return old === undefined ? undefined : await this.#readJson(old.dataRef)
  }

  /**
   * An HTTP edge's heartbeat: it becomes a known node (protocol http) if it was not, its report is
   * kept as its status, and the version it says it runs (or failed) becomes its delivery state.
   */
  async heartbeat (
    orgId: string,
    edgeId: string,
    hb: {
      version?: number
      sync_status?: string
      errors?: string[]
      properties?: Record<string, string>
      stats?: Record<string, unknown>
    }
  ): Promise<{ latest?: number }> {
    const dest = { orgId, destinationType: this.#edgeType, destinationId: edgeId }
    const prev = await this.#store.nodes.get(dest)
    const now = new Date().toISOString()
    await this.#store.nodes.upsert({
      ...dest,
      properties: { ...(prev?.properties ?? {}), ...(hb.properties ?? {}) },
      protocol: prev?.protocol ?? 'http',
      online: true,
      registeredAt: prev?.registeredAt ?? now,
      lastHeartbeat: now,
      status: {
        ems: {
          activeVersion: hb.version,
          syncStatus: hb.sync_status,
          lastError: hb.errors?.[0],
          ...(hb.stats ?? {})
        }
      }
    })
    if (prev === undefined) await this.ensurePublished(orgId, edgeId)
    const cur = await this.current(orgId, edgeId)
    if (cur !== undefined && hb.version === cur.version) {
      const failed = hb.sync_status === 'failed' || hb.sync_status === 'rolled_back'
      await this.#store.deliveries.upsertMany([
        {
          ...configKey(orgId, edgeId),
          destinationType: this.#edgeType,
          destinationId: edgeId,
          instanceId: cur.instanceId,
          status: failed ? 'error' : 'consumed',
          ...(failed ? { message: hb.errors?.[0] ?? hb.sync_status ?? 'failed' } : {})
        }
      ])
    }
    return cur === undefined ? {} : { latest: cur.version }
  }

  /** Which edges a layer touches. */
  async #affected (orgId: string, ref: LayerRef): Promise<NodeRecord[]> {
    const all = await this.edges(orgId)
    if (ref.kind === 'org') return all
    if (ref.kind === 'site') return all.filter((n) => n.properties.site === ref.id)
    return all.filter((n) => n.destinationId === ref.id)
  }

  /** Each affected edge's next config and what the change does to it (no writes). */
  async #plan (
    orgId: string,
    ref: LayerRef,
    doc: Obj,
    only?: ReadonlySet<string>
  ): Promise<Array<{ outcome: EdgeOutcome; next: Obj; currentVersion: number }>> {
    const out: Array<{ outcome: EdgeOutcome; next: Obj; currentVersion: number }> = []
    const cache = new Map<string, Obj | undefined>()
    const pins = await this.#pins(orgId)
    for (const n of await this.#affected(orgId, ref)) {
      if (only !== undefined && !only.has(n.destinationId)) continue
      const next = mergeLayers(await this.#layersOf(orgId, n, { ref, doc }, cache)).config
      const cur = await this.current(orgId, n.destinationId)
      const changes = diff(cur === undefined ? {} : body(cur.config), next)
      const currentVersion = cur?.version ?? 0
      // Layers may be built up in any order: an edge whose config is not complete yet is not published.
      const missing = SECTIONS.filter((k) => next[k] === undefined)
      if (missing.length > 0 && cur === undefined) {
        out.push({ outcome: { edge: n.destinationId, changes, incomplete: missing }, next, currentVersion })
        continue
      }
      const problems = validateEmsConfig(next)
      const pinned = pins.get(n.destinationId)
      out.push({
        outcome: {
          edge: n.destinationId,
          changes,
          ...(problems.length === 0 ? {} : { problems }),
          ...(pinned === undefined ? {} : { pinned })
        },
        next,
        currentVersion
      })
    }
    return out
  }

  /**
   * A layer change's effect per affected edge: the outcome (diff, problems, why it is skipped),
   * the config it would get, and the version it runs now (for rollouts; no writes).
   */
  async plan (
    orgId: string,
    ref: LayerRef,
    doc: Obj,
    only?: ReadonlySet<string>
  ): Promise<Array<{ outcome: EdgeOutcome; next: Obj; currentVersion: number }>> {
    return await this.#plan(orgId, ref, doc, only)
  }

  /** Changes whenever any layer of the org changes (their instance ids): plans made under it still hold. */
  async layerStamp (orgId: string): Promise<string> {
    const ids: string[] = []
    let cursor: string | undefined
    do {
      const page = await this.#store.objects.list({
        orgId,
        objectType: LAYER_TYPE,
        limit: 1000,
        ...(cursor === undefined ? {} : { cursor })
      })
      for (const o of page.items) ids.push(`${o.key.objectId}:${o.meta.instanceID}`)
      cursor = page.next
    } while (cursor !== undefined)
    return ids.join(',')
  }

  /**
   * Writes a layer without publishing anything (a rollout already sent each edge its config);
   * audited as a layer change.
   */
  async writeLayer (orgId: string, ref: LayerRef, doc: Obj, actor: string, note: string): Promise<void> {
    const before = (await this.getLayer(orgId, ref))?.doc ?? {}
    await this.#putJson(layerKey(orgId, ref), doc, actor)
    await this.#auditLayerSet(orgId, actor, ref, before, doc, { note })
  }

  /** One audit entry per layer change: who, which layer, the diff, and what came of it. */
  async #auditLayerSet (
    orgId: string,
    actor: string,
    ref: LayerRef,
    before: Obj,
    doc: Obj,
    detail: Record<string, unknown>
  ): Promise<void> {
    await this.#store.audit.append({
      at: new Date().toISOString(),
      orgId,
      actor,
      action: 'ems.layer.set',
      target: layerName(ref),
      detail: { diff: diff(before, doc), ...detail }
    })
  }

  /** Publishes `config` to one edge as its next version; its version and object instance. */
  async publishConfig (
    orgId: string,
    edgeId: string,
    config: Obj,
    actor: string,
    extra: Obj = {}
  ): Promise<{ version: number; instanceId: number }> {
    const version = await this.#publish(orgId, edgeId, { ...config, ...extra }, actor)
    const cur = await this.current(orgId, edgeId)
    return { version, instanceId: cur?.instanceId ?? 0 }
  }

  /**
   * What changed from version `from` to version `to` of an edge's config (content only: not the
   * version number or timestamp); `from` 0 is the empty config.
   */
  async versionDiff (orgId: string, edgeId: string, from: number, to: number): Promise<Change[]> {
    const load = async (v: number): Promise<Obj> => {
      if (v === 0) return {}
      const c = await this.at(orgId, edgeId, v)
      if (c === undefined) throw new NotFoundError(`Version ${v} of ${edgeId}'s config is not retained`)
      return body(c)
    }
    return diff(await load(from), await load(to))
  }

  /** Publishes the content of an earlier version again, as a new version (no pin: a rollout's revert). */
  async republish (orgId: string, edgeId: string, version: number, actor: string): Promise<number> {
    const config = await this.at(orgId, edgeId, version)
    if (config === undefined) { throw new NotFoundError(`Version ${version} of ${edgeId}'s config is not retained`) }
    return await this.#publish(orgId, edgeId, body(config), actor)
  }

  /** What a layer change would do to each affected edge (no writes). */
  async preview (orgId: string, ref: LayerRef, doc: Obj): Promise<EdgeOutcome[]> {
    return (await this.#plan(orgId, ref, doc)).map((p) => p.outcome)
  }

  /** Replaces a layer; every affected edge whose effective config changes gets a new version. */
  async setLayer (orgId: string, ref: LayerRef, doc: Obj, actor: string): Promise<EdgeOutcome[]> {
    const plan = await this.#plan(orgId, ref, doc)
    const outcomes = plan.map((p) => p.outcome)
    const bad = outcomes.filter((o) => o.problems !== undefined)
    if (bad.length > 0) {
      throw new ValidationError(
        `The change makes the config of ${bad.length} edge(s) invalid; nothing was published`,
        { details: bad.map((b) => ({ edge: b.edge, problems: b.problems })) }
      )
    }
    const before = (await this.getLayer(orgId, ref))?.doc ?? {}
    await this.#putJson(layerKey(orgId, ref), doc, actor)
    // Each edge's config is its own object: publishing a few at once lets their writes share
    // commits (one at a time, a change to 1,000 edges waited out 1,000 commits in a row).
    // A rolled-back (pinned) edge keeps its version: the change reaches it once it is released.
    const todo = plan.filter(
      (p) =>
        p.outcome.changes.length > 0 && p.outcome.incomplete === undefined && p.outcome.pinned === undefined
    )
    await forEachLimit(todo, PUBLISH_IN_FLIGHT, async (p) => {
      p.outcome.version = await this.#publish(orgId, p.outcome.edge, p.next, actor, p.currentVersion)
    })
    await this.#auditLayerSet(orgId, actor, ref, before, doc, {
      edges: outcomes.map((o) => ({ edge: o.edge, version: o.version, changes: o.changes.length }))
    })
    return outcomes
  }

  async #publish (
    orgId: string,
    edgeId: string,
    config: Obj,
    actor: string,
    currentVersion?: number
  ): Promise<number> {
    const version = (currentVersion ?? (await this.current(orgId, edgeId))?.version ?? 0) + 1
    // Delivery details (a rollout's maintenance windows) travel with this version only.
    const windows = config.apply_windows === undefined ? {} : { apply_windows: config.apply_windows }
    const content = {
      ...body(config),
      ...windows,
      version,
      timestamp: new Date().toISOString(),
      edge_id: edgeId
    }
    await this.#pub.put(
      configKey(orgId, edgeId),
      {
        destinationType: this.#edgeType,
        destinationID: edgeId,
        version: String(version),
        contentType: 'application/json',
        description: `EMS configuration v${version}`
      },
      Buffer.from(JSON.stringify(content)),
      actor
    )
    this.#log.info('EMS config published', { orgId, edge: edgeId, version })
    this.events.emit('published', { orgId, edgeId, version })
    return version
  }

  /** Audits an edge's verdict on one of its config versions (applied, or refused / rolled back). */
  async recordOutcome (
    orgId: string,
    edgeId: string,
    instanceId: number,
    state: string,
    message?: string
  ): Promise<void> {
    const inst = await this.#store.objects.getInstance(configKey(orgId, edgeId), instanceId)
    await this.#store.audit.append({
      at: new Date().toISOString(),
      orgId,
      actor: `node:${edgeId}`,
      action: 'ems.outcome',
      target: edgeId,
      detail: {
        version: Number(inst?.meta.version ?? 0),
        outcome: state === 'consumed' ? 'applied' : 'failed',
        ...(message === undefined ? {} : { message })
      }
    })
  }

  /** The EMS history of an org: changes (who, when, diff, edges and versions) and each edge's outcome. */
  async changes (orgId: string, since?: string): Promise<unknown[]> {
    return (
      await this.#store.audit.list({ orgId, ...(since === undefined ? {} : { since }), limit: 10_000 })
    ).filter((e) => e.action.startsWith('ems.'))
  }

  /** Sends an edge its effective config if it has none yet (a newly registered edge). */
  async ensurePublished (orgId: string, edgeId: string): Promise<void> {
    if ((await this.current(orgId, edgeId)) !== undefined) return
    const e = await this.effective(orgId, edgeId)
    if (Object.keys(e.config).length === 0 || validateEmsConfig(e.config).length > 0) return
    await this.#publish(orgId, edgeId, e.config, 'css')
  }

  async history (
    orgId: string,
    edgeId: string
  ): Promise<Array<{ version: number; instanceID: number; lastUpdate?: string }>> {
    const h = await this.#store.objects.history(configKey(orgId, edgeId))
    if (h.length === 0) throw new NotFoundError(`No EMS config published for ${edgeId}`)
    return h
      .filter((o) => o.meta.deleted !== true)
      .map((o) => ({
        version: Number(o.meta.version ?? 0),
        instanceID: o.meta.instanceID,
        ...(o.meta.lastUpdate === undefined ? {} : { lastUpdate: o.meta.lastUpdate })
      }))
  }

  /**
   * Rollback: the content of an earlier version, published as a new version, and the edge pinned
   * there: the layers still hold the values that were rolled back, so the next unrelated layer
   * change would otherwise bring them back. `release` unpins it and publishes its effective config.
   */
  async rollback (orgId: string, edgeId: string, version: number, actor: string): Promise<number> {
    const h = await this.#store.objects.history(configKey(orgId, edgeId))
    const old = h.find((o) => Number(o.meta.version) === version)
    if (old === undefined) throw new NotFoundError(`Version ${version} of ${edgeId}'s config is not retained`)
    const config = await this.#readJson(old.dataRef)
    if (config === undefined) throw new SyncError(SyncErrorCode.STORAGE, 'The retained version has no data')
    const v = await this.#publish(orgId, edgeId, config, actor)
    const since = new Date().toISOString()
    await this.#setPin(orgId, edgeId, { version: v, from: version, actor, since })
    await this.#store.audit.append({
      at: since,
      orgId,
      actor,
      action: 'ems.rollback',
      target: edgeId,
      detail: { from: version, to: v, pinned: true }
    })
    return v
  }

  /**
   * Ends a rollback pin: the edge follows its layers again, and gets its effective config now if
   * that differs from what it runs (the outcome says what changed; `version` when published).
   */
  async release (orgId: string, edgeId: string, actor: string): Promise<EdgeOutcome> {
    await this.#node(orgId, edgeId)
    const pin = await this.pin(orgId, edgeId)
    if (pin === undefined) { throw new SyncError(SyncErrorCode.CONFLICT, `${edgeId} is not pinned by a rollback`) }
    const next = (await this.effective(orgId, edgeId)).config
    const cur = await this.current(orgId, edgeId)
    const changes = diff(cur === undefined ? {} : body(cur.config), next)
    const problems = validateEmsConfig(next)
    if (problems.length > 0) {
      throw new ValidationError(
        `The layers give ${edgeId} an invalid config; fix them before releasing the rollback`,
        { details: [{ edge: edgeId, problems }] }
      )
    }
    await this.#setPin(orgId, edgeId, undefined)
    const outcome: EdgeOutcome = { edge: edgeId, changes }
    if (changes.length > 0) outcome.version = await this.#publish(orgId, edgeId, next, actor, cur?.version)
    await this.#store.audit.append({
      at: new Date().toISOString(),
      orgId,
      actor,
      action: 'ems.release',
      target: edgeId,
      detail: { pinnedAt: pin.version, version: outcome.version, changes: changes.length }
    })
    return outcome
  }

  /** Sets one value for a site (its layer) or for the edges a selector matches (their layers). */
  async bulk (
    orgId: string,
    req: { path: string; value: Json; site?: string; selector?: Record<string, string>; apply: boolean },
    actor: string
  ): Promise<EdgeOutcome[]> {
    if ((req.site === undefined) === (req.selector === undefined)) {
      throw new ValidationError('Give either site or selector')
    }
    const patch = (doc: Obj): Obj => withValueAt(doc, req.path, req.value)
    if (req.site !== undefined) {
      const ref: LayerRef = { kind: 'site', id: req.site }
      const doc = patch((await this.getLayer(orgId, ref))?.doc ?? {})
      return req.apply ? await this.setLayer(orgId, ref, doc, actor) : await this.preview(orgId, ref, doc)
    }
    const matching = (await this.edges(orgId)).filter((n) =>
      Object.entries(req.selector ?? {}).every(([k, v]) => n.properties[k] === v)
    )
    const out: EdgeOutcome[] = []
    const changes: Array<{ ref: LayerRef; doc: Obj }> = []
    for (const n of matching) {
      const ref: LayerRef = { kind: 'edge', id: n.destinationId }
      const doc = patch((await this.getLayer(orgId, ref))?.doc ?? {})
      changes.push({ ref, doc })
      out.push(...(await this.preview(orgId, ref, doc)))
    }
    if (!req.apply) return out
    const bad = out.filter((o) => o.problems !== undefined)
    if (bad.length > 0) {
      throw new ValidationError(
        `The change makes the config of ${bad.length} edge(s) invalid; nothing was published`,
        { details: bad.map((b) => ({ edge: b.edge, problems: b.problems })) }
      )
    }
    const applied: EdgeOutcome[] = []
    for (const c of changes) applied.push(...(await this.setLayer(orgId, c.ref, c.doc, actor)))
    return applied
  }

  /**
   * Per edge: the latest version, what its delivery reached, whether it is online, and since when
   * it is behind: the publish time of the first version newer than the one it runs (as its plugin
   * reports), so an edge that missed several versions counts from the first it missed.
   */
  async status (orgId: string): Promise<Array<Record<string, unknown>>> {
    const pins = await this.#pins(orgId)
    const out: Array<Record<string, unknown>> = []
    for (const n of await this.edges(orgId)) out.push(await this.#statusOf(orgId, n, pins))
    return out
  }

  /**
   * The fleet view's EMS columns for the given nodes (those of the EMS edge type), with a state
   * for its filter: error (the last version failed), behind (not running the newest), ok.
   */
  async describe (
    orgId: string,
    nodes: NodeRecord[]
  ): Promise<Map<string, Record<string, unknown> & { state: 'ok' | 'behind' | 'error' | 'drift' }>> {
    const out = new Map<string, Record<string, unknown> & { state: 'ok' | 'behind' | 'error' | 'drift' }>()
    const edges = nodes.filter((n) => n.destinationType === this.#edgeType)
    if (edges.length === 0) return out
    const pins = await this.#pins(orgId)
    for (const n of edges) {
      const s = await this.#statusOf(orgId, n, pins)
      const state =
        s.drift !== undefined
          ? 'drift'
          : s.status === 'error'
            ? 'error'
            : s.behindSince !== undefined || s.status === 'none'
              ? 'behind'
              : 'ok'
      out.set(n.destinationId, { ems: s, state })
    }
    return out
  }

  async #statusOf (
    orgId: string,
    n: NodeRecord,
    pins: Map<string, unknown>
  ): Promise<Record<string, unknown>> {
    const key = configKey(orgId, n.destinationId)
    const o = await this.#store.objects.get(key)
    const d = await this.#store.deliveries.get(key, n)
    const pinned = pins.get(n.destinationId)
    const online = isOnline(n, this.#offlineAfterMs)
    const latest = o === undefined ? undefined : Number(o.meta.version ?? 0)
    const upToDate =
      o !== undefined &&
      d !== undefined &&
      d.instanceId === o.meta.instanceID &&
      (d.status === 'consumed' || d.status === 'delivered')
    const runtime = n.status?.ems as
      { activeVersion?: number; activeHash?: string; heldForWindow?: unknown } | undefined
    const drift = o === undefined || runtime === undefined ? undefined : await this.#drift(key, o, d, runtime)
    return {
      edge: n.destinationId,
      site: n.properties.site ?? '',
      latest,
      online,
      // An edge that is away is not "delivering": nothing moves until it is back.
      status: !online && !upToDate && o !== undefined ? 'offline' : (d?.status ?? 'none'),
      deliveredVersion:
        d === undefined || o === undefined
          ? undefined
          : d.instanceId === o.meta.instanceID
            ? latest
            : 'older',
      behindSince:
        upToDate || o === undefined ? undefined : await this.#behindSince(key, runtime?.activeVersion, d),
      lastSeen: n.lastHeartbeat,
      message: d?.message ?? '',
      ...(runtime === undefined ? {} : { runtime }),
      ...(pinned === undefined ? {} : { pinned }),
      ...(drift === undefined ? {} : { drift })
    }
  }

  readonly #hashes = new Map<string, string>()

  /**
   * Whether the edge runs something other than what it should, from what its plugin reports: the
   * newest version with other content (changed on the device), or an older version than the one
   * it confirmed (an old backup restored).
   */
  async #drift (
    key: ObjectKey,
    o: { meta: { instanceID: number; version?: string }; dataRef?: string },
    d: { instanceId: number; status: string } | undefined,
    runtime: { activeVersion?: number; activeHash?: string; heldForWindow?: unknown }
  ): Promise<{ kind: string; detail: string } | undefined> {
    const latest = Number(o.meta.version ?? 0)
    if (runtime.activeVersion === latest && runtime.activeHash !== undefined) {
      const k = `${key.orgId}/${key.objectId}/${o.meta.instanceID}`
      let published = this.#hashes.get(k)
      if (published === undefined) {
        const config = await this.#readJson(o.dataRef)
        if (config === undefined) return undefined
        published = configHash(config)
        if (this.#hashes.size > 50_000) this.#hashes.clear()
        this.#hashes.set(k, published)
      }
      if (published !== runtime.activeHash) {
        return {
          kind: 'changed',
          detail: `runs v${latest} with other content than published (changed on the device)`
        }
      }
      return undefined
    }
    const confirmed = d !== undefined && d.instanceId === o.meta.instanceID && d.status === 'consumed'
    if (
      confirmed &&
      runtime.activeVersion !== undefined &&
      runtime.activeVersion < latest &&
      runtime.heldForWindow === undefined
    ) {
      return {
        kind: 'older',
        detail: `runs v${runtime.activeVersion} after confirming v${latest} (restored from an old backup?)`
      }
    }
    return undefined
  }

  /** Resends an edge its newest config as a new version (the plugin applies it again). */
  async correctDrift (orgId: string, edgeId: string, actor: string): Promise<number> {
    const cur = await this.current(orgId, edgeId)
    if (cur === undefined) throw new NotFoundError(`No EMS config published for ${edgeId}`)
    const v = await this.#publish(orgId, edgeId, body(cur.config), actor, cur.version)
    await this.#store.audit.append({
      at: new Date().toISOString(),
      orgId,
      actor,
      action: 'ems.drift.correct',
      target: edgeId,
      detail: { from: cur.version, to: v }
    })
    return v
  }

  /** When the edge first fell behind: the first version after the newest one it is known to hold. */
  async #behindSince (
    key: ObjectKey,
    running: number | undefined,
    d: { instanceId: number; status: string } | undefined
  ): Promise<string | undefined> {
    const history = await this.#store.objects.history(key)
    const confirmed =
      d !== undefined && (d.status === 'consumed' || d.status === 'delivered')
        ? Number(history.find((h) => h.meta.instanceID === d.instanceId)?.meta.version ?? 0)
        : 0
    const holds = Math.max(running ?? 0, confirmed)
    const missed = history.filter((h) => Number(h.meta.version ?? 0) > holds && h.meta.deleted !== true)
    return missed
      .map((h) => h.meta.lastUpdate)
      .filter((t): t is string => t !== undefined)
      .sort()[0]
  }
}
