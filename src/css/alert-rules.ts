/**
 * The alert rules the CSS evaluates itself: an edge refused or rolled back what it was sent, an
 * edge raised an alarm (a plugin's `activeAlarms` in its heartbeat), an edge has been silent longer
 * than AlertOfflineAfterSeconds. Each is raised once per episode (kept in this process: after a
 * restart an edge still offline is reported once more).
 */
import type { Logger } from '../common/log.js'
import type { DestinationKey, NodeRecord } from '../common/model.js'
import { nodeUsername } from '../common/protocol/topics.js'
import type { Alerter } from '../alerts/alerter.js'
import type { Store } from '../storage/index.js'
import type { Outcome } from './handlers/index.js'

const MAX_REMEMBERED = 10_000

export class AlertRules {
  readonly #alerter: Alerter
  readonly #store: Store
  readonly #offlineAfterMs: number
  readonly #log: Logger
  readonly #offline = new Set<string>()
  readonly #alarms = new Map<string, Set<string>>()
  /** Refusals already raised (edge, object, instance): an edge that repeats one is not news. */
  readonly #refusals = new Set<string>()
  readonly #timer: NodeJS.Timeout

  /** The offline sweep runs on the lease holder only: one alert per edge, not one per instance. */
  constructor (o: {
    alerter: Alerter
    store: Store
    offlineAfterMs: number
    sweep: (work: () => Promise<void>) => Promise<boolean>
    log: Logger
  }) {
    this.#alerter = o.alerter
    this.#store = o.store
    this.#offlineAfterMs = o.offlineAfterMs
    this.#log = o.log
    this.#timer = setInterval(() => {
      o.sweep(async () => {
        await this.#sweep()
      }).catch((err: unknown) => {
        this.#log.warn('Offline sweep failed', { err })
      })
    }, Math.max(1000, Math.min(30_000, o.offlineAfterMs / 2)))
    this.#timer.unref()
  }

  /** An edge's error verdict on an instance it was sent. */
  async refused (node: DestinationKey, ack: Outcome): Promise<void> {
    const seen = `${nodeUsername(node)} ${ack.objectType}/${ack.objectId}#${ack.instanceId}`
    if (this.#refusals.has(seen)) return
    this.#refusals.add(seen)
    if (this.#refusals.size > MAX_REMEMBERED) {
      const oldest = this.#refusals.values().next().value
      if (oldest !== undefined) this.#refusals.delete(oldest)
    }
    const key = { orgId: node.orgId, objectType: ack.objectType, objectId: ack.objectId }
    const version = (await this.#store.objects.getInstance(key, ack.instanceId))?.meta.version
    const what = `${ack.objectType}/${ack.objectId}${version === undefined ? '' : ` version ${version}`}`
    await this.#alerter.raise({
      kind: 'edge_refused',
      orgId: node.orgId,
      edge: edgeName(node),
      summary: `Edge ${edgeName(node)} refused ${what}: ${ack.message ?? 'no reason given'}`,
      detail: { ...ack, ...(version === undefined ? {} : { version }) }
    })
  }

  /** A heartbeat's plugin status: alarms that were not active before are raised. */
  reported (node: DestinationKey, status: Record<string, Record<string, unknown>>): void {
    const now = new Set<string>()
    for (const [plugin, s] of Object.entries(status)) {
      const list = s.activeAlarms
      if (Array.isArray(list)) for (const a of list) if (typeof a === 'string') now.add(`${plugin}:${a}`)
    }
    const user = nodeUsername(node)
    const before = this.#alarms.get(user) ?? new Set<string>()
    const raised = [...now].filter((a) => !before.has(a))
    if (now.size === 0) this.#alarms.delete(user)
    else this.#alarms.set(user, now)
    if (raised.length === 0) return
    this.#alerter
      .raise({
        kind: 'edge_alarm',
        orgId: node.orgId,
        edge: edgeName(node),
        summary: `Edge ${edgeName(node)} raised ${raised.join(', ')}`,
        detail: { alarms: raised }
      })
      .catch((err: unknown) => {
        this.#log.error('Alarm alert not recorded', { err })
      })
  }

  async #sweep (): Promise<void> {
    const users = (await this.#store.users.list()).map((u) => u.orgId)
    const orgs = new Set([...users, ...(await this.#store.objects.orgs())])
    for (const orgId of orgs) {
      let cursor: string | undefined
      do {
        const page = await this.#store.nodes.list({ orgId, limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
        for (const n of page.items) await this.#check(n)
        cursor = page.next
      } while (cursor !== undefined)
    }
  }

  async #check (n: NodeRecord): Promise<void> {
    const user = nodeUsername(n)
    const heard = n.lastHeartbeat === undefined ? 0 : Date.parse(n.lastHeartbeat)
    const silentMs = Date.now() - heard
    if (silentMs <= this.#offlineAfterMs) {
      this.#offline.delete(user)
      return
    }
    if (this.#offline.has(user)) return
    this.#offline.add(user)
    await this.#alerter.raise({
      kind: 'edge_offline',
      orgId: n.orgId,
      edge: edgeName(n),
      summary: `Edge ${edgeName(n)} silent for ${Math.round(silentMs / 1000)} s`,
      detail: { lastHeartbeat: n.lastHeartbeat ?? 'never' }
    })
  }

  close (): void {
    clearInterval(this.#timer)
  }
}

function edgeName (n: DestinationKey): string {
  return `${n.destinationType}/${n.destinationId}`
}
