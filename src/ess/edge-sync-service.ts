/**
 * Composition root of the Edge Sync Service: an MQTT session with the CSS (clean: false), the local
 * store, and the local REST API for edge apps (Open Horizon's ESS paths, without the org).
 */
import path from 'node:path'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { SyncConfig } from '../common/config/schema.js'
import { ConfigError, NotFoundError, SyncError, SyncErrorCode } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import type { DestinationKey, ObjectKey, StoredObject } from '../common/model.js'
import { essSubscriptions, nodeClientId, nodeUsername } from '../common/protocol/topics.js'
import { createApiServer, nameSchema, parseRange } from '../api/server.js'
import {
  Authenticator,
  clientTls,
  ensureBootstrapAdmin,
  serverTls
} from '../security/index.js'
import { openStore, timedStore, type Store } from '../storage/index.js'
import { metricsRoute, serviceMetrics } from '../common/metrics.js'
import { EssMetrics } from './metrics.js'
import { autoLink, httpLink, mqttLink, type EdgeLink } from '../transport/index.js'
import { Uplink } from './uplink.js'
import { ValidationError } from '../common/errors.js'
import { changeWebhook, Notifier, webhookChangeSchema, webhookSecret } from '../api/notifier.js'
import { EdgeSync, parseProperties } from './sync.js'
import { appObjectKey, objParams, typeParams } from './app-access.js'
import { isOwn, registerEdgeObjectRoutes } from './edge-objects.js'
import { TrustStore } from './trust.js'
import { PluginHost } from './plugins.js'
import { registerEssAdminRoutes } from './admin-routes.js'
import { registerDashboard } from '../dashboard/routes.js'
import { UiSessions } from '../dashboard/sessions.js'
import { createPlugins, type PluginFactories } from './plugin-registry.js'
import { chmod, rm } from 'node:fs/promises'

export interface EssHandle {
  restUrl: string
  node: DestinationKey
  store: Store
  adminKey: string
  close: () => Promise<void>
}

function registerEssRoutes (
  app: FastifyInstance,
  store: Store,
  sync: EdgeSync,
  notifier: Notifier,
  startedAt: number
): void {
  const key = (req: FastifyRequest): ObjectKey => appObjectKey(req, sync.node.orgId)
  // An object an app here deleted is gone for apps at once (its tombstone waits for the CSS).
  const withdrawn = (o: StoredObject): boolean => o.meta.deleted === true && isOwn(o, sync)
  const mustGet = async (k: ObjectKey): Promise<StoredObject> => {
    const o = await store.objects.get(k)
    if (o === undefined || withdrawn(o)) throw new NotFoundError(`Object ${k.objectType}/${k.objectId} not found`)
    return o
  }

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }))
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) =>
    sync.up.connected ? { status: 'ready' } : await reply.code(503).send({ status: 'disconnected' })
  )
  app.get('/api/v1/health', async () => ({
    general: {
      nodeType: 'ESS',
      healthStatus: sync.up.connected ? 'green' : 'red',
      upTime: Math.round((Date.now() - startedAt) / 1000),
      dropped: sync.dropped
    },
    transfers: sync.transfers.stats,
    plugins: sync.plugins.status()
  }))

  // The instance last shown to apps, per object: a consumed or received mark without an explicit
  // instance applies to it, not to a newer one that arrived after the app read (which would then
  // never be listed again). In memory: after a restart a mark applies to the current instance.
  const served = new Map<string, number>()
  const serve = (o: StoredObject): StoredObject => {
    served.set(`${o.key.objectType}/${o.key.objectId}`, o.meta.instanceID)
    return o
  }
  const etag = (o: StoredObject): string => `"${o.meta.instanceID}"`

  app.get<{ Querystring: { received?: boolean } }>(
    '/api/v1/objects/:objectType',
    {
      schema: {
        summary: 'New or updated objects of a type (poll)',
        params: typeParams,
        querystring: { type: 'object', properties: { received: { type: 'boolean' } } }
      }
    },
    async (req) => {
      const k = key(req)
      const q = req.query
      const statuses: StoredObject['status'][] =
        q.received === true
          ? ['completelyReceived', 'objdeleted', 'objreceived']
          : ['completelyReceived', 'objdeleted']
      const page = await store.objects.list({
        orgId: k.orgId,
        objectType: k.objectType,
        statuses,
        limit: 1000
      })
      const items = page.items.filter((o) => !withdrawn(o))
      if (items.length === 0) throw new NotFoundError('No objects of this type')
      return items.map((o) => ({ ...serve(o).meta, status: o.status }))
    }
  )
  app.get(
    '/api/v1/objects/:objectType/:objectID',
    { schema: { summary: 'Object metadata (ETag: the instance)', params: objParams } },
    async (req, reply) => {
      const o = serve(await mustGet(key(req)))
      return await reply.header('etag', etag(o)).send({ ...o.meta, status: o.status })
    }
  )
  app.get(
    '/api/v1/objects/:objectType/:objectID/status',
    { schema: { params: objParams } },
    async (req, reply) => {
      return await reply.type('text/plain').send((await mustGet(key(req))).status)
    }
  )
  app.get(
    '/api/v1/objects/:objectType/:objectID/data',
    { schema: { summary: 'Object data; Range supported', params: objParams } },
    async (req, reply) => {
      const o = serve(await mustGet(key(req)))
      if (o.dataRef === undefined || o.meta.deleted === true) throw new NotFoundError('Object has no data')
      void reply.header('etag', etag(o))
      const size = o.meta.objectSize
      const range = parseRange(req.headers.range, size)
      const stream = await store.blobs.read(o.dataRef, range)
      if (stream === undefined) throw new NotFoundError('Object data is missing')
      void reply.type('application/octet-stream').header('accept-ranges', 'bytes')
      if (range !== undefined) {
        return await reply
          .code(206)
          .header('content-range', `bytes ${range.start}-${range.end}/${size}`)
          .send(stream)
      }
      return await reply.header('content-length', String(size)).send(stream)
    }
  )
  const markQuery = { type: 'object', properties: { instanceID: { type: 'integer', minimum: 1 } } } as const
  const mark = (suffix: string, status: StoredObject['status'], ack: 'consumed' | undefined): void => {
    app.put<{ Querystring: { instanceID?: number } }>(
      `/api/v1/objects/:objectType/:objectID/${suffix}`,
      {
        schema: {
          summary: `Mark the object ${suffix}: the instance named (?instanceID= or If-Match), else the one last shown to apps`,
          params: objParams,
          querystring: markQuery
        }
      },
      async (req, reply) => {
        const k = key(req)
        const o = await mustGet(k)
        if (suffix !== 'deleted') {
          const named =
            req.query.instanceID ?? ifMatchInstance(req.headers['if-match'])
          const meant = named ?? served.get(`${k.objectType}/${k.objectId}`) ?? o.meta.instanceID
          if (meant > o.meta.instanceID) {
            throw new SyncError(
              SyncErrorCode.CONFLICT,
              `Instance ${meant} is not held here (current: ${o.meta.instanceID})`
            )
          }
          // An older instance than the one held: that one is done; the newer stays listed.
          if (meant < o.meta.instanceID) return await reply.code(204).header('etag', etag(o)).send()
        }
        if (suffix === 'deleted') {
          if (o.meta.deleted !== true) throw new NotFoundError('Object was not deleted by the CSS')
          const refs = await store.objects.remove(k)
          for (const r of refs) await store.blobs.remove(r)
          return await reply.code(204).send()
        }
        if (o.meta.deleted === true) throw new NotFoundError('Object was deleted')
        // More consumers expected: not consumed yet.
        if (suffix === 'consumed' && !sync.countConsumer(o)) return await reply.code(204).send()
        await store.objects.setStatus(k, status, o.meta.instanceID)
        if (ack !== undefined) {
          await sync.up.sendOrDefer({
            v: 1,
            kind: 'ack',
            state: ack,
            objectType: k.objectType,
            objectId: k.objectId,
            instanceId: o.meta.instanceID
          })
        }
        return await reply.code(204).send()
      }
    )
  }
  app.put<{ Body: { action: 'register' | 'delete'; url: string } }>(
    '/api/v1/objects/:objectType',
    {
      schema: {
        summary: 'Register or delete a webhook for a type',
        params: typeParams,
        body: webhookChangeSchema
      }
    },
    async (req, reply) => {
      const k = key(req)
      await changeWebhook(store.webhooks, k.orgId, k.objectType, req.body)
      return await reply.code(204).send()
    }
  )
  app.get<{ Querystring: { objectType?: string } }>(
    '/api/v1/events',
    {
      schema: {
        summary: 'Server-sent events: update and delete notices (edgesync)',
        querystring: { type: 'object', properties: { objectType: nameSchema } }
      }
    },
    async (req, reply) => {
      key(req)
      const q = req.query
      reply.hijack()
      notifier.attach(reply.raw, q.objectType)
    }
  )
  // Open Horizon's Python client POSTs; its Go client PUTs (which Open Horizon refuses with 405).
  app.route({
    method: ['POST', 'PUT'],
    url: '/api/v1/resend',
    schema: { summary: 'Show every held object to apps again and re-register with the CSS' },
    handler: async (req, reply) => {
      key(req)
      let cursor: string | undefined
      do {
        const page = await store.objects.list({
          orgId: sync.key('x', 'x').orgId,
          statuses: ['objreceived', 'objconsumed'],
          limit: 1000,
          cursor
        })
        for (const o of page.items) {
          await store.objects.setStatus(o.key, 'completelyReceived', o.meta.instanceID)
        }
        cursor = page.next
      } while (cursor !== undefined)
      await sync.register()
      return await reply.code(204).send()
    }
  })
  mark('consumed', 'objconsumed', 'consumed')
  mark('received', 'objreceived', undefined)
  mark('deleted', 'objdeleted', undefined)
}

/** The instance an `If-Match: "N"` names (the ETag of the metadata and data answers). */
function ifMatchInstance (h: string | string[] | undefined): number | undefined {
  if (typeof h !== 'string' || h.trim() === '*') return undefined
  const m = /^(?:W\/)?"(\d+)"$/.exec(h.trim())
  if (m === null) throw new ValidationError('If-Match must be an ETag from this API, e.g. "12"')
  return Number(m[1])
}

function refuseClearText (cfg: Readonly<SyncConfig>): void {
  const mqtt = cfg.CommunicationProtocol !== 'http'
  const http = cfg.CommunicationProtocol !== 'mqtt'
  if (!cfg.RequireTls) return
  if (mqtt && !/^(mqtts|wss):\/\//.test(cfg.BrokerAddress ?? '')) {
    throw new ConfigError(
      SyncErrorCode.CONFIG_INVALID,
      `RequireTls is set but BrokerAddress ${cfg.BrokerAddress ?? ''} is not mqtts:// or wss://`
    )
  }
  if (http && !(cfg.HttpCssAddress ?? '').startsWith('https://')) {
    throw new ConfigError(
      SyncErrorCode.CONFIG_INVALID,
      `RequireTls is set but HttpCssAddress ${cfg.HttpCssAddress ?? ''} is not https://`
    )
  }
}

/** The way to the CSS that CommunicationProtocol names; built now, opened once everything exists. */
function cloudLink (cfg: Readonly<SyncConfig>, node: DestinationKey, log: Logger): EdgeLink {
  const username = nodeUsername(node)
  const tls = clientTls(cfg)
  const overHttp = (): EdgeLink =>
    httpLink({
      url: cfg.HttpCssAddress ?? '',
      username,
      password: cfg.NodeSecret,
      tls,
      waitSeconds: cfg.HttpPollSeconds,
      firstConnectWaitMs: 3000,
      log: log.child({ component: 'ess.http-link' })
    })
  if (cfg.CommunicationProtocol === 'http') return overHttp()
  const mqtt = mqttLink({
    url: cfg.BrokerAddress ?? '',
    clientId: nodeClientId(node),
    username,
    password: cfg.NodeSecret,
    tls,
    subscriptions: essSubscriptions(node),
    firstConnectWaitMs: 3000,
    log: log.child({ component: 'ess.mqtt' })
  })
  if (cfg.CommunicationProtocol === 'auto') {
    return autoLink(mqtt, overHttp, cfg.MqttFallbackSeconds * 1000, log.child({ component: 'ess.link' }))
  }
  return mqtt
}

export interface EssOptions {
  /** The plugins `Plugins` may name (the composition in src/app decides which exist). */
  plugins?: PluginFactories
}

export async function startEdgeSyncService (
  cfg: Readonly<SyncConfig>,
  log: Logger,
  opts: EssOptions = {}
): Promise<EssHandle> {
  // The config schema says so too; checked again here because a secret must never leave in clear.
  refuseClearText(cfg)
  const startedAt = Date.now()
  const node: DestinationKey = {
    orgId: cfg.OrgID ?? '',
    destinationType: cfg.DestinationType ?? '',
    destinationId: cfg.DestinationID ?? ''
  }
  const sub = path.join('ess', `${node.orgId}-${node.destinationType}-${node.destinationId}`)
  const { registry, store: storeTimes } = await serviceMetrics('ess', cfg.Metrics)
  const opened = await openStore(cfg, sub, log.child({ component: 'ess.store' }))
  const store = storeTimes === undefined ? opened : timedStore(opened, storeTimes)
  const cleanups: Array<() => Promise<void>> = [
    async () => {
      await store.close()
    }
  ]
  const closeAll = async (): Promise<void> => {
    for (const c of cleanups.reverse()) {
      await c().catch((err: unknown) => {
        log.error('Error while closing', { err })
      })
    }
  }
  try {
    const boot = await ensureBootstrapAdmin(store, {
      key: cfg.AdminKey,
      secret: cfg.AdminSecret,
      dir: path.join(cfg.PersistenceRootPath, sub),
      orgId: node.orgId,
      role: 'orgAdmin',
      log
    })
    const dir = path.join(cfg.PersistenceRootPath, sub)
    // Built first, opened last: everything that publishes is built with it.
    const link = cloudLink(cfg, node, log)
    cleanups.push(async () => {
      await link.close()
    })
    const up = new Uplink(link, node, log.child({ component: 'ess.up' }))
    const notifier = new Notifier({
      hooks: store.webhooks,
      orgId: node.orgId,
      secret: await webhookSecret(dir),
      timeoutMs: cfg.WebhookTimeoutMs,
      log: log.child({ component: 'ess.notify' })
    })
    cleanups.push(async () => {
      notifier.close()
    })
    // The heartbeat after a verdict needs `sync`, built below with the host.
    let beatSoon = (): void => {}
    const host = new PluginHost(await createPlugins(cfg.Plugins, opts.plugins ?? {}), {
      store,
      orgId: node.orgId,
      report: (key, instanceId, v) => {
        const ids = { objectType: key.objectType, objectId: key.objectId, instanceId }
        up.sendSoon(
          v.state === 'consumed'
            ? { v: 1, kind: 'ack', state: 'consumed', ...ids }
            : { v: 1, kind: 'ack', state: 'error', ...ids, message: v.message.slice(0, 1000) }
        )
        beatSoon()
      },
      dir: path.join(dir, 'plugins'),
      options: cfg.PluginOptions,
      log: log.child({ component: 'ess.plugins' }),
      metrics: registry,
      changed: () => { beatSoon() }
    })
    host.pause() // until the first resync: only the newest instance of anything missed runs
    await host.start()
    cleanups.push(async () => {
      await host.stop()
    })
    const trust = cfg.SigningKey === undefined ? undefined : await TrustStore.open(dir, cfg.SigningKey)
    const sync = new EdgeSync({
      store,
      node,
      up,
      notices: notifier,
      plugins: host,
      properties: parseProperties(cfg.NodeProperties),
      transferDir: path.join(dir, 'transfers'),
      window: cfg.TransferWindow,
      timeoutMs: cfg.TransferTimeoutSeconds * 1000,
      maxInline: cfg.MaxInlineDataSize,
      chunkSize: cfg.ChunkSize,
      trust,
      log: log.child({ component: 'ess.sync' })
    })
    beatSoon = () => { sync.heartbeatSoon() }
    cleanups.push(async () => {
      await sync.transfers.close()
      sync.close()
    })
    const tls = serverTls(cfg)
    const auth = new Authenticator(store.users)
    const uiSessions = new UiSessions(store.settings, store.users, cfg.UiSessionMinutes * 60_000)
    const app = await createApiServer({
      log: log.child({ component: 'ess.api' }),
      auth,
      ui: { sessions: uiSessions, kind: 'ess' },
      bodyLimit: cfg.MaxJsonBodySize,
      rateLimit: cfg.RateLimitPerSecond,
      title: 'edgesync Edge Sync Service',
      https: tls,
      ...(cfg.Metrics ? { metrics: metricsRoute(registry, cfg.MetricsKey) } : {})
    })
    const essMetrics = new EssMetrics(registry, { link, sync, store, orgId: node.orgId, plugins: host })
    registerEssRoutes(app, store, sync, notifier, startedAt)
    registerEdgeObjectRoutes(app, store, sync, cfg.MaxDataSize)
    registerEssAdminRoutes(app, host, store, node.orgId)
    registerDashboard(app, { kind: 'ess', title: `edgesync edge ${node.destinationId}`, auth, sessions: uiSessions, https: tls !== undefined })
    const unix = cfg.ListeningType === 'unix' || cfg.ListeningType === 'secure-unix'
    if (unix) {
      // The kernel silently cuts longer socket paths (sun_path holds 108 bytes with its NUL).
      if (Buffer.byteLength(cfg.ListeningAddress) > 107) {
        throw new ConfigError(
          SyncErrorCode.CONFIG_INVALID,
          `ListeningAddress ${cfg.ListeningAddress} is longer than a Unix socket path may be (107 bytes)`
        )
      }
      // A socket file left by a process that died is in the way; nothing listens on it any more.
      await rm(cfg.ListeningAddress, { force: true })
      await app.listen({ path: cfg.ListeningAddress })
      await chmod(cfg.ListeningAddress, 0o660) // the ESS's user and group: its local apps
    } else {
      await app.listen({ host: cfg.ListeningAddress, port: cfg.ListeningPort ?? 8081 })
    }
    cleanups.push(async () => {
      await app.close()
    })
    await link.open({
      onMessage: async (topic, payload) => {
        await sync.onMessage(topic, payload)
      },
      // Register (with what we hold) on every connect: the CSS resends whatever we miss.
      onConnect: async () => {
        essMetrics.connected()
        await sync.register()
        await sync.reoffer()
        sync.heartbeatSoon()
      }
    })
    const beat = setInterval(() => {
      sync
        .heartbeat()
        .catch((err: unknown) => {
          log.debug('Heartbeat not sent', { err })
        })
    }, cfg.HeartbeatIntervalSeconds * 1000)
    beat.unref()
    cleanups.push(async () => {
      clearInterval(beat)
    })
    const addr = app.server.address()
    const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.ListeningPort
    const scheme = tls === undefined ? 'http' : 'https'
    const restUrl = unix ? `${scheme}+unix://${encodeURIComponent(cfg.ListeningAddress)}` : `${scheme}://${cfg.ListeningAddress}:${port}`
    if (cfg.SigningKey === undefined) {
      log.warn('SigningKey is not set: objects from the CSS are accepted without a signature check')
    }
    log.info('ESS listening', {
      rest: restUrl,
      protocol: cfg.CommunicationProtocol,
      ...(cfg.CommunicationProtocol === 'http' ? {} : { broker: cfg.BrokerAddress }),
      ...(cfg.CommunicationProtocol === 'mqtt' ? {} : { css: cfg.HttpCssAddress }),
      node,
      store: store.kind,
      adminKey: boot.appKey,
      ...(boot.file === undefined ? {} : { adminCredentialsFile: boot.file })
    })
    let closed = false
    return {
      restUrl,
      node,
      store,
      adminKey: boot.appKey,
      close: async () => {
        if (closed) return
        closed = true
        await closeAll()
        log.info('ESS stopped')
      }
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}
