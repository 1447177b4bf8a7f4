/**
 * How a CSS extension (EMS is the first) plugs into the generic service: it registers its routes,
 * names the object types it owns (no edge and no generic objects-API call may write them), and
 * reacts to edges' outcomes and registrations. The CSS never imports an extension; the
 * composition (`src/app/`) hands it the ones to run.
 */
import type { FastifyInstance } from 'fastify'
import type { SyncConfig } from '../common/config/schema.js'
import type { Logger } from '../common/log.js'
import type { Registry } from '../common/metrics.js'
import type { Alert } from '../alerts/alerter.js'
import type { DestinationKey, ObjectKey, StoredObject } from '../common/model.js'
import type { Authenticator } from '../security/index.js'
import type { Store } from '../storage/index.js'
import type { Outcome } from './handlers/index.js'
import type { Describe } from './fleet.js'
import type { RolloutDriver } from './rollouts/model.js'

export interface ExtensionContext {
  app: FastifyInstance
  store: Store
  cfg: Readonly<SyncConfig>
  auth: Authenticator
  log: Logger
  /** The CSS's Prometheus registry, for the extension's own series. */
  metrics: Registry
  /** Raises an operator alert (recorded, then sent to the configured channels). */
  alert: (a: Alert) => Promise<void>
  /**
   * Runs periodic fleet-wide work on one instance only (the lease holder; see css/leader.ts).
   * Resolves whether it ran here.
   */
  sweep: (work: () => Promise<void>) => Promise<boolean>
  /** Writes an object through the object service (new instance, published to its destinations). */
  putObject: (
    key: ObjectKey,
    meta: Record<string, unknown>,
    data: Buffer | undefined,
    owner: string
  ) => Promise<StoredObject>
}

export interface ExtensionHandle {
  /** What the extension adds to nodes in the fleet view (see fleet.ts). */
  describe?: Describe
  /** Kinds of change it can roll out in waves (see rollouts/), by kind name. */
  rolloutDrivers?: Record<string, RolloutDriver>
  outcome?: (node: DestinationKey, ack: Outcome) => Promise<void>
  registered?: (node: DestinationKey) => Promise<void>
  close?: () => Promise<void>
}

export interface CssExtension {
  name: string
  /** Object types only this extension writes. Types starting with `_` are always the CSS's. */
  ownedTypes: readonly string[]
  start: (ctx: ExtensionContext) => Promise<ExtensionHandle>
}

/** Whether edges and the generic objects API are barred from writing `objectType`. */
export function ownedTypeCheck (extensions: readonly CssExtension[]): (objectType: string) => boolean {
  const owned = new Set(extensions.flatMap((e) => e.ownedTypes))
  return (objectType) => objectType.startsWith('_') || owned.has(objectType)
}
