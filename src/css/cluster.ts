/**
 * The CSS instances sharing a store, as each reports itself: a settings entry per instance
 * (`instance/<id>`) rewritten every few seconds with what it serves. `GET /api/v1/cluster` and
 * `syncctl cluster status` read them: which instances are alive, which holds the lease, how many
 * edges each has connected.
 */
import type { FastifyInstance } from 'fastify'
import { forbidden } from '../api/server.js'
import type { Logger } from '../common/log.js'
import type { SettingStore } from '../storage/index.js'
import type { LeaderStatus } from './leader.js'

export interface InstanceReport {
  id: string
  startedAt: string
  seenAt: string
  rest: string
  mqtt: string[]
  /** Edges connected to this instance's embedded broker or HTTP link; null on an external broker. */
  connectedEdges: number | null
  leader: boolean
  leaseVersion?: number
}

const PREFIX = 'instance/'

export class InstanceRegistry {
  readonly #settings: SettingStore
  readonly #everyMs: number
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined
  #id = ''

  constructor (settings: SettingStore, everyMs: number, log: Logger) {
    this.#settings = settings
    this.#everyMs = everyMs
    this.#log = log
  }

  /** Reports now and then every `everyMs` until closed. */
  async start (report: () => InstanceReport): Promise<void> {
    const write = async (): Promise<void> => {
      const r = report()
      this.#id = r.id
      await this.#settings.set(`${PREFIX}${r.id}`, JSON.stringify(r))
    }
    await write()
    this.#timer = setInterval(() => {
      write().catch((err: unknown) => {
        this.#log.warn('Could not report this instance', { err })
      })
    }, this.#everyMs)
    this.#timer.unref()
  }

  /** Stops reporting and removes this instance's entry (a graceful stop is not a loss). */
  async close (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#id !== '') await this.#settings.remove(`${PREFIX}${this.#id}`).catch(() => {})
  }

  /** Every instance reported, alive when heard from within three report periods. */
  async list (): Promise<Array<InstanceReport & { alive: boolean }>> {
    const now = Date.now()
    return (await this.#settings.list(PREFIX)).map(([, v]) => {
      const r = JSON.parse(v) as InstanceReport
      return { ...r, alive: now - Date.parse(r.seenAt) <= 3 * this.#everyMs }
    })
  }
}

export function registerClusterRoutes (
  app: FastifyInstance,
  registry: InstanceRegistry,
  lease: () => LeaderStatus
): void {
  app.get(
    '/api/v1/cluster',
    {
      schema: {
        summary: 'The CSS instances on this store (alive or not), the lease holder, edges connected to each (sync admins)'
      }
    },
    async (req) => {
      if (req.identity?.role !== 'syncAdmin') throw forbidden('Needs a sync admin')
      const l = lease()
      return {
        self: l.self,
        lease: { holder: l.holder ?? null, version: l.version ?? null, expiresAt: l.expiresAt ?? null },
        instances: await registry.list()
      }
    }
  )
}
