/**
 * Open Horizon's destination policies: an object with a `destinationPolicy` is placed by a policy
 * engine (Open Horizon's agbot), which lists such objects, marks each policy taken in
 * (`policyreceived`) and sets the destinations (`PUT .../destinations`). Until it does, the object
 * goes nowhere (see addressing.ts).
 */
import type { FastifyInstance } from 'fastify'
import { NotFoundError, ValidationError } from '../common/errors.js'
import type { StoredObject } from '../common/model.js'
import { forbidden, nameSchema } from '../api/server.js'
import { requireObjectAccess, requireOrg } from '../security/acl.js'
import type { Identity } from '../security/index.js'
import type { Store } from '../storage/index.js'
import { hasPolicy } from './addressing.js'

export interface PolicyQuery {
  /** Include policies already taken in (default: only those not yet). */
  received?: boolean
  /** `org/serviceName`: only policies naming this service (taken in or not). */
  service?: string
  /** Only policies whose timestamp is at least this (taken in or not). */
  since?: number
}

export const policyQuerySchema = {
  destination_policy: { type: 'boolean' },
  received: { type: 'boolean' },
  service: { type: 'string', pattern: '^[^/]+/.+$', maxLength: 300 },
  since: { type: 'integer', minimum: 0 }
} as const

interface PolicyDoc {
  properties?: unknown
  constraints?: unknown
  services?: Array<{ orgID?: string; serviceName?: string }>
  timestamp?: number
}

function wanted (o: StoredObject, q: PolicyQuery): boolean {
  if (!hasPolicy(o.meta) || o.meta.deleted === true) return false
  const policy = o.meta.destinationPolicy as PolicyDoc
  if (q.service !== undefined) {
    const [org, name] = [q.service.slice(0, q.service.indexOf('/')), q.service.slice(q.service.indexOf('/') + 1)]
    return (policy.services ?? []).some((s) => s.orgID === org && s.serviceName === name)
  }
  if (q.since !== undefined) return (policy.timestamp ?? 0) >= q.since
  return q.received === true || o.policyReceived !== true
}

/** Every policy object of these orgs the caller may read, with its destinations' states. */
export async function listPolicies (
  store: Store,
  who: Identity,
  orgs: readonly string[],
  q: PolicyQuery
): Promise<unknown[]> {
  const out: unknown[] = []
  for (const orgId of orgs) {
    let cursor: string | undefined
    do {
      const page = await store.objects.list({ orgId, limit: 500, ...(cursor === undefined ? {} : { cursor }) })
      for (const o of page.items) {
        if (!wanted(o, q)) continue
        const ok = await requireObjectAccess(store.users, who, orgId, o.key.objectType, false).then(
          () => true,
          () => false
        )
        if (ok) out.push(await policyView(store, o))
      }
      cursor = page.next
    } while (cursor !== undefined)
  }
  if (out.length === 0) throw new NotFoundError('No objects with a destination policy')
  return out
}

async function policyView (store: Store, o: StoredObject): Promise<Record<string, unknown>> {
  const destinations: unknown[] = []
  let cursor: string | undefined
  do {
    const range = { limit: 1000, ...(cursor === undefined ? {} : { cursor }) }
    const page = await store.deliveries.listByObject(o.key, range)
    for (const d of page.items) {
      destinations.push({
        destinationType: d.destinationType,
        destinationID: d.destinationId,
        status: d.status,
        message: d.message ?? ''
      })
    }
    cursor = page.next
  } while (cursor !== undefined)
  return {
    orgID: o.key.orgId,
    objectType: o.key.objectType,
    objectID: o.key.objectId,
    destinationPolicy: o.meta.destinationPolicy,
    destinations
  }
}

const objParams = {
  type: 'object',
  properties: { orgID: nameSchema, objectType: nameSchema, objectID: nameSchema },
  required: ['orgID', 'objectType', 'objectID']
} as const

export function registerPolicyRoutes (app: FastifyInstance, store: Store): void {
  app.get<{ Querystring: PolicyQuery & { destination_policy?: boolean } }>(
    '/api/v1/objects',
    {
      schema: {
        summary: 'Objects with a destination policy in every org (?destination_policy=true; a sync admin)',
        querystring: { type: 'object', properties: policyQuerySchema }
      }
    },
    async (req) => {
      if (req.query.destination_policy !== true) throw new ValidationError('Use destination_policy=true')
      const who = req.identity
      if (who?.role !== 'syncAdmin') throw forbidden('Listing every org needs a sync admin')
      return await listPolicies(store, who, await store.objects.orgs(), req.query)
    }
  )
  app.put<{ Params: { orgID: string, objectType: string, objectID: string } }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/policyreceived',
    { schema: { summary: "Marks the object's destination policy taken in (a policy engine's call)", params: objParams } },
    async (req, reply) => {
      const p = req.params
      const key = { orgId: p.orgID, objectType: p.objectType, objectId: p.objectID }
      const who = requireOrg(req.identity, key.orgId)
      await requireObjectAccess(store.users, who, key.orgId, key.objectType, true)
      const cur = await store.objects.get(key)
      if (cur === undefined || cur.meta.deleted === true) throw new NotFoundError(`Object ${p.objectType}/${p.objectID} not found`)
      if (!hasPolicy(cur.meta)) throw new ValidationError(`Object ${p.objectType}/${p.objectID} has no destination policy`)
      await store.objects.markPolicyReceived(key)
      return await reply.code(204).send()
    }
  )
}
