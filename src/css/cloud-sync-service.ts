/** Composition root of the Cloud Sync Service. */
import path from 'node:path'
import type { SyncConfig } from '../common/config/schema.js'
import type { Logger } from '../common/log.js'
import { downTopic, essSubscriptions, mayUseClientId, parseNodeUsername, upTopic } from '../common/protocol/topics.js'
import { encode } from '../common/protocol/messages.js'
import { createApiServer } from '../api/server.js'
import { Authenticator, LoginGuard, OrgSigningKeys, verifySecret } from '../security/index.js'
import { openStore, timedStore, type Store } from '../storage/index.js'
import { metricsRoute, serviceMetrics } from '../common/metrics.js'
import { CssMetrics } from './metrics.js'
import { isOnline } from './presence.js'
import {
  connectExternalBroker,
  HttpBridge,
  startEmbeddedBroker,
  withHttpBridge,
  type BrokerAuth,
  type CloudTransport
} from '../transport/index.js'
import { ensureBootstrapAdmin, serverTls } from '../security/index.js'
import { ObjectService } from './objects.js'
import { Uploads } from './uploads.js'
import { registerCssRoutes, type CssHealth } from './routes.js'
import { registerAdminRoutes } from './admin-routes.js'
import { registerLinkRoutes } from './link-routes.js'
import { registerAlertRoutes, startAlerting } from './alerting.js'
import { registerOrgRoutes } from './org-routes.js'
import { registerPolicyRoutes } from './policy-routes.js'
import { registerUserRoutes } from './user-routes.js'
import { registerFleetRoutes } from './fleet.js'
import { registerDashboard } from '../dashboard/routes.js'
import { UiSessions } from '../dashboard/sessions.js'
import { FleetEvents } from './fleet-events.js'
import { registerNodeCommandRoutes } from './node-commands.js'
import { RolloutEngine } from './rollouts/engine.js'
import { registerRolloutRoutes } from './rollouts/routes.js'
import { objectRolloutDriver } from './rollouts/object-driver.js'
import type { RolloutDriver } from './rollouts/model.js'
import { StatusWriter } from './status-writer.js'
import { CloudSync } from './sync.js'
import { InstanceRegistry, registerClusterRoutes } from './cluster.js'
import { memorySettings, sharedSettings } from '../storage/index.js'
import { Leader } from './leader.js'
import { Lifecycle } from './lifecycle.js'
import { cssInstanceId } from './instance-id.js'
import { ownedTypeCheck, type CssExtension, type ExtensionHandle } from './extension.js'
import type { SyncHooks } from './handlers/index.js'
import type { DestinationKey, ObjectKey, StoredObject } from '../common/model.js'
import { Notifier, sharedWebhookSecret } from '../api/notifier.js'

export interface CssHandle {
  restUrl: string
  mqttUrls: string[]
  store: Store
  sync: CloudSync
  adminKey: string
  close: () => Promise<void>
}

/** Checks a node's broker login: a password, or a client certificate the broker verified. */
async function checkNode (
  store: Store,
  username: string | undefined,
  password: Buffer | undefined,
  certificateName: string | undefined
): Promise<string | undefined> {
  // A verified client certificate names the node; a username, if also given, must agree.
  const claimed = certificateName ?? username
  if (certificateName !== undefined && username !== undefined && username !== certificateName) {
    return undefined
  }
  const node = parseNodeUsername(claimed)
  if (node === undefined || claimed === undefined) return undefined
  const user = await store.users.get(claimed)
  // The user record is checked on certificate logins too: removing or disabling a node locks it out.
  if (user === undefined || user.disabled || user.role !== 'node' || user.orgId !== node.orgId) {
    return undefined
  }
  if (certificateName !== undefined) return claimed
  return password !== undefined && (await verifySecret(password.toString('utf8'), user.secretHash))
    ? claimed
    : undefined
}

function brokerAuth (store: Store): BrokerAuth {
  // Throttles the guessing address, never the node guessed at (see LoginGuard).
  const guard = new LoginGuard()
  return {
    authenticate: async (login) => {
      const id = login.certificateName ?? login.username ?? ''
      if (guard.blocked(login.address, id) > 0) return { ok: false, reason: 'throttled' }
      const who = await checkNode(store, login.username, login.password, login.certificateName)
      if (who === undefined) {
        guard.failed(login.address, id)
        return { ok: false, reason: 'bad-credentials' }
      }
      guard.succeeded(login.address, id)
      // A client id belongs to the identity that logs in with it (no session takeover).
      if (!mayUseClientId(who, login.clientId)) return { ok: false, reason: 'client-id' }
      return { ok: true, username: who }
    },
    mayPublish: (username, topic) => {
      const node = parseNodeUsername(username)
      return node !== undefined && topic === upTopic(node)
    },
    maySubscribe: (username, topic) => {
      const node = parseNodeUsername(username)
      return node !== undefined && essSubscriptions(node).includes(topic)
    }
  }
}

const REREGISTER_WITHIN_MS = 10_000
/** How often the lease holder advances rollouts. */
const ROLLOUT_TICK_MS = 1000
/** An HTTP edge's undelivered messages past this are dropped for a resync (see HttpBridge). */
const LINK_MAX_QUEUE_BYTES = 64 * 1024 * 1024
/** Edges poll at least every 25 s; a session silent three times that long has gone. */
const LINK_IDLE_MS = 90_000

/** Registered nodes by whether they count as online now. */
async function nodeStates (store: Store, offlineAfterMs: number): Promise<{ online: number; offline: number }> {
  const orgs = new Set([...(await store.users.list()).map((u) => u.orgId), ...(await store.objects.orgs())])
  let online = 0
  let offline = 0
  for (const orgId of orgs) {
    let cursor: string | undefined
    do {
      const page = await store.nodes.list({ orgId, limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
      for (const n of page.items) {
        if (isOnline(n, offlineAfterMs)) online++
        else offline++
      }
      cursor = page.next
    } while (cursor !== undefined)
  }
  return { online, offline }
}

/** The last answer of `f`, computed again once it is older than `ms` (scrapes stay cheap). */
function cachedFor<T> (ms: number, f: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined
  return async () => {
    if (last === undefined || Date.now() - last.at > ms) {
      const value = f()
      last = { at: Date.now(), value }
      // A failure (the store is down) is not kept: the next scrape asks again.
      value.catch(() => {
        if (last?.value === value) last = undefined
      })
    }
    return await last.value
  }
}

function mapNode<T> (username: string, f: (node: DestinationKey) => T): T | undefined {
  const node = parseNodeUsername(username)
  return node === undefined ? undefined : f(node)
}

/** What the store and the broker say right now (never a fixed answer). */
async function health (store: Store, transport: CloudTransport, leader: Leader): Promise<CssHealth> {
  const ok = await store.ping().then(
    () => true,
    () => false
  )
  return { store: ok, broker: transport.connected(), lease: leader.status() }
}

/** How often the leader scans the store for lifecycle deadlines its own writes did not bring. */
const LIFECYCLE_RESCAN_MS = 5 * 60_000

export interface CssOptions {
  /** Extensions to run (the composition in src/app decides which). */
  extensions?: readonly CssExtension[]
}

export async function startCloudSyncService (
  cfg: Readonly<SyncConfig>,
  log: Logger,
  opts: CssOptions = {}
): Promise<CssHandle> {
  const extensions = opts.extensions ?? []
  const ownsType = ownedTypeCheck(extensions)
  const startedAt = Date.now()
  const { registry, store: storeTimes } = await serviceMetrics('css', cfg.Metrics)
  const opened = await openStore(cfg, 'css', log.child({ component: 'css.store' }))
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
      dir: path.join(cfg.PersistenceRootPath, 'css'),
      orgId: '*',
      role: 'syncAdmin',
      log
    })
    const tls = serverTls(cfg)
    const instanceId = await cssInstanceId(cfg.CssInstanceId, path.join(cfg.PersistenceRootPath, 'css'))
    const leader = new Leader(store.leases, instanceId, cfg.LeaseSeconds * 1000, log.child({ component: 'css.leader' }))
    const fenced = async (work: () => Promise<void>): Promise<boolean> => await leader.fenced(work)
    const broker: CloudTransport =
      cfg.BrokerMode === 'embedded'
        ? await startEmbeddedBroker({
          host: cfg.MqttListeningAddress,
          port: cfg.RequireTls ? undefined : cfg.MqttListeningPort,
          tlsPort: cfg.MqttTlsListeningPort,
          wsPort: cfg.MqttWsListeningPort,
          tls,
          auth: brokerAuth(store),
          maxPayload: cfg.MqttMaxPayloadSize,
          handlesUpMessages: true,
          ...(cfg.ClusterRedisAddress === undefined ? {} : { clusterRedis: cfg.ClusterRedisAddress }),
          log: log.child({ component: 'css.broker' })
        })
        : await connectExternalBroker({
          url: cfg.BrokerAddress ?? '',
          username: cfg.BrokerUsername,
          password: cfg.BrokerPassword,
          instanceId,
          log: log.child({ component: 'css.mqtt' })
        })
    // Edges that cannot reach the broker poll over HTTP; both channels are one transport.
    const bridge = new HttpBridge({
      topicsOf: (u) => mapNode(u, essSubscriptions),
      upTopicOf: (u) => mapNode(u, upTopic),
      maxBytes: LINK_MAX_QUEUE_BYTES,
      idleMs: LINK_IDLE_MS,
      log: log.child({ component: 'css.link' })
    })
    const transport = withHttpBridge(broker, bridge)
    const status = new StatusWriter(store, log.child({ component: 'css.status' }))
    const fleetEvents = new FleetEvents()
    status.onWritten = (orgs) => { fleetEvents.changed(orgs) }
    cleanups.push(async () => { fleetEvents.close() })
    // Webhooks of the CSS's apps: called when an object from an edge arrives (Open Horizon's).
    const notices = new Notifier({
      hooks: store.webhooks,
      secret: await sharedWebhookSecret(store.settings, path.join(cfg.PersistenceRootPath, 'css')),
      timeoutMs: cfg.WebhookTimeoutMs,
      log: log.child({ component: 'css.notify' })
    })
    cleanups.push(async () => { notices.close() })
    // Closing the broker disconnects every edge, and each disconnect is a status write: drain
    // those after the broker closed, before the store does.
    cleanups.push(async () => {
      await transport.close()
      await status.drain()
    })
    // Hooks are closures over what is built below; no edge message arrives before the broker
    // handler is attached, after everything exists.
    const started: ExtensionHandle[] = []
    const alerting = startAlerting(cfg, store, notices.secret, fenced, log.child({ component: 'css.alerts' }))
    cleanups.push(async () => {
      alerting.close()
    })
    const hooks: SyncHooks = {
      allConsumed: async (key) => {
        await objects.delete(key)
      },
      outcome: async (node, ack) => {
        if (ack.state === 'error') await alerting.rules.refused(node, ack)
        for (const h of started) await h.outcome?.(node, ack)
      },
      registered: async (node) => {
        for (const h of started) await h.registered?.(node)
      },
      reported: (node, st) => {
        alerting.rules.reported(node, st)
      }
    }
    const sync: CloudSync = new CloudSync({
      store,
      transport,
      status,
      cfg,
      log: log.child({ component: 'css.sync' }),
      transferDir: path.join(cfg.PersistenceRootPath, 'css', 'transfers'),
      signer: new OrgSigningKeys(store.settings, path.join(cfg.PersistenceRootPath, 'css', 'signing-keys')),
      hooks,
      ownsType,
      notices,
      ...(cfg.Metrics
        ? {
            observe: new CssMetrics(registry, {
              counters: () => sync.counters,
              nodes: cachedFor(10_000, async () => await nodeStates(store, cfg.NodeOfflineAfterSeconds * 1000)),
              connected: () => connected.size,
              transfers: () => ({
                downActive: sync.chunks.active,
                downBytes: sync.chunks.bytesServed,
                upActive: sync.uplink.active,
                upBytes: sync.uplink.stats.bytesReceived
              }),
              lease: () => leader.status()
            })
          }
        : {})
    })
    cleanups.push(async () => {
      await sync.uplink.close()
    })
    const connected = new Set<string>()
    transport.onPresence((username, online) => {
      const node = parseNodeUsername(username)
      if (online) connected.add(username)
      else connected.delete(username)
      if (node !== undefined) status.touch(node, online).catch(() => {})
    })
    // The lifecycle's actions go through the object service; the service reports every new
    // instance to the lifecycle, so deadlines are always current. (Closures: used only later.)
    const lifecycle: Lifecycle = new Lifecycle(
      store,
      {
        delete: async (key) => {
          await objects.delete(key)
        },
        activate: async (key) => {
          await objects.activate(key)
        },
        remove: async (key) => {
          await sync.removeObject(key)
        }
      },
      { deletedGraceMs: cfg.DeletedRetentionSeconds * 1000 },
      log.child({ component: 'css.lifecycle' })
    )
    const objects: ObjectService = new ObjectService(
      store,
      {
        publish: async (obj) => {
          lifecycle.consider(obj)
          return await sync.publish(obj)
        },
        removeObject: async (key) => {
          await sync.removeObject(key)
        }
      },
      cfg.MaxDataSize
    )
    // Every instance keeps the deadlines of what it writes; the leader also scans the store when it
    // takes the lease and every few minutes, for objects whose writer is gone.
    leader.onGained(async () => {
      await lifecycle.start()
    })
    const rescan = setInterval(() => {
      fenced(async () => {
        await lifecycle.start()
      }).catch((err: unknown) => {
        log.warn('Lifecycle rescan failed', { err })
      })
    }, LIFECYCLE_RESCAN_MS)
    rescan.unref()
    await leader.start()
    cleanups.push(async () => {
      clearInterval(rescan)
      lifecycle.close()
      await leader.stop()
    })
    const auth = new Authenticator(store.users)
    const uiSessions = new UiSessions(store.settings, store.users, cfg.UiSessionMinutes * 60_000)
    const app = await createApiServer({
      log: log.child({ component: 'css.api' }),
      auth,
      bodyLimit: cfg.MaxJsonBodySize,
      rateLimit: cfg.RateLimitPerSecond,
      title: 'edgesync Cloud Sync Service',
      https: tls,
      ui: { sessions: uiSessions, kind: 'css' },
      ...(cfg.Metrics ? { metrics: metricsRoute(registry, cfg.MetricsKey) } : {})
    })
    registerDashboard(app, { kind: 'css', title: 'edgesync', auth, sessions: uiSessions, https: tls !== undefined })
    let ready = false
    registerCssRoutes(app, {
      signingKey: async (org) => await sync.signer.publicKey(org),
      brokerUrls: transport.urls,
      offlineAfterMs: cfg.NodeOfflineAfterSeconds * 1000,
      store,
      objects,
      uploads: new Uploads(store, objects, cfg.MaxDataSize),
      sendState: async (o, st) => {
        await sync.sendState(o, st)
      },
      startedAt,
      counters: () => ({ ...sync.counters, refused: { ...sync.counters.refused } }),
      ready: () => ready,
      health: async () => await health(store, transport, leader),
      ownsType
    })
    registerAdminRoutes(app, store, objects)
    registerLinkRoutes(app, bridge, cfg.MqttMaxPayloadSize)
    registerAlertRoutes(app, store, alerting.alerter)
    // Reported to the store only where other instances can share it; a local store has one CSS
    // (and no file rewritten every few seconds).
    const registrySettings = sharedSettings(store) ?? memorySettings()
    const instances = new InstanceRegistry(registrySettings, (cfg.LeaseSeconds * 1000) / 3, log.child({ component: 'css.cluster' }))
    registerClusterRoutes(app, instances, () => leader.status())
    registerPolicyRoutes(app, store)
    const offlineAfterMs = cfg.NodeOfflineAfterSeconds * 1000
    registerFleetRoutes(app, {
      store,
      offlineAfterMs,
      events: fleetEvents,
      describe: () => started.flatMap((h) => (h.describe === undefined ? [] : [h.describe]))
    })
    const drivers = new Map<string, RolloutDriver>([['object', objectRolloutDriver(store, objects)]])
    const rollouts = new RolloutEngine(store, () => drivers, log.child({ component: 'css.rollouts' }))
    registerRolloutRoutes(app, rollouts)
    // On the lease holder only: one instance advances each rollout.
    const rolloutTimer = setInterval(() => {
      fenced(async () => { await rollouts.tick() }).catch((err: unknown) => {
        log.warn('Rollout tick failed', { err })
      })
    }, ROLLOUT_TICK_MS)
    rolloutTimer.unref()
    cleanups.push(async () => { clearInterval(rolloutTimer) })
    registerNodeCommandRoutes(app, {
      store,
      offlineAfterMs,
      send: async (node, msg) => { await transport.publish(downTopic(node), encode(msg)) }
    })
    registerOrgRoutes(app, {
      store,
      brokerUrls: transport.urls,
      disconnect: (u) => {
        transport.disconnect(u)
      }
    })
    registerUserRoutes(app, {
      store,
      disconnect: (u) => {
        transport.disconnect(u)
      },
      keys: sync.signer,
      rotateKey: async (org) => await sync.rotateKey(org)
    })
    const putObject = async (
      key: ObjectKey,
      meta: Record<string, unknown>,
      data: Buffer | undefined,
      owner: string
    ): Promise<StoredObject> => await objects.put(key, meta, data, owner)
    for (const ext of extensions) {
      const h = await ext.start({
        app,
        store,
        cfg,
        auth,
        log: log.child({ component: `css.${ext.name}` }),
        metrics: registry,
        alert: async (a) => {
          await alerting.alerter.raise(a)
        },
        sweep: fenced,
        putObject
      })
      started.push(h)
      for (const [kind, d] of Object.entries(h.rolloutDrivers ?? {})) drivers.set(kind, d)
      // Runs before app.close (cleanups run in reverse): upgraded sockets would keep the server open.
      if (h.close !== undefined) cleanups.push(h.close)
    }
    transport.onMessage(async (topic, payload) => {
      await sync.onMessage(topic, payload)
    })
    // Every (re)subscription on an external broker: nodes register again, spread over 10 s.
    transport.onSubscribed?.(() => {
      sync.askReregister(REREGISTER_WITHIN_MS).catch((err: unknown) => {
        log.warn('Could not ask nodes to register again', { err })
      })
    })
    await app.listen({ host: cfg.ListeningAddress, port: cfg.ListeningPort ?? 8080 })
    cleanups.push(async () => {
      await app.close()
    })
    const addr = app.server.address()
    const port = typeof addr === 'object' && addr !== null ? addr.port : cfg.ListeningPort
    const restUrl = `${tls === undefined ? 'http' : 'https'}://${cfg.ListeningAddress}:${port}`
    const startedIso = new Date(startedAt).toISOString()
    await instances.start(() => {
      const l = leader.status()
      return {
        id: instanceId,
        startedAt: startedIso,
        seenAt: new Date().toISOString(),
        rest: restUrl,
        mqtt: transport.urls,
        // An external broker does not tell the CSS who is connected.
        connectedEdges: cfg.BrokerMode === 'embedded' ? connected.size : null,
        leader: l.leader,
        ...(l.leader && l.version !== undefined ? { leaseVersion: l.version } : {})
      }
    })
    cleanups.push(async () => {
      await instances.close()
    })
    ready = true
    log.info('CSS listening', {
      rest: restUrl,
      mqtt: transport.urls,
      store: store.kind,
      broker: cfg.BrokerMode,
      adminKey: boot.appKey,
      ...(boot.file === undefined ? {} : { adminCredentialsFile: boot.file })
    })
    let closed = false
    return {
      restUrl,
      mqttUrls: transport.urls,
      store,
      sync,
      adminKey: boot.appKey,
      close: async () => {
        if (closed) return
        closed = true
        await closeAll()
        log.info('CSS stopped')
      }
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}
