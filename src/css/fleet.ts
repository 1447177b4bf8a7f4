/**
 * The fleet view: every node of an org with its presence, site, properties and what its plugins
 * report, filtered and paged on the server (the dashboard stays fast at 10,000 edges), plus what
 * extensions add per node (the EMS: config version in force vs newest, since when it is behind).
 * `/events` streams a `fleet` server-sent event whenever a node of the org changed (coalesced).
 */
import type { FastifyInstance } from 'fastify'
import { nameSchema } from '../api/server.js'
import type { NodeRecord } from '../common/model.js'
import { NotFoundError } from '../common/errors.js'
import { requireOrg } from '../security/acl.js'
import type { Store } from '../storage/index.js'
import { isOnline } from './presence.js'
import type { FleetEvents } from './fleet-events.js'

/** What an extension adds to each node of a page, by destination id (absent: nothing to add). */
export type Describe = (orgId: string, nodes: NodeRecord[]) => Promise<Map<string, FleetExtra>>
/** `state`: ok, behind, error or drift, for the state filter; the rest is shown as is. */
export type FleetExtra = Record<string, unknown> & { state?: 'ok' | 'behind' | 'error' | 'drift' }

const STATES = ['online', 'offline', 'ok', 'behind', 'error', 'drift'] as const
type State = (typeof STATES)[number]

interface FleetQuery {
  site?: string
  state?: State
  q?: string
  offset?: number
  limit?: number
}

export async function allNodes (store: Store, orgId: string): Promise<NodeRecord[]> {
  const out: NodeRecord[] = []
  let cursor: string | undefined
  do {
    const page = await store.nodes.list({ orgId, limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
    out.push(...page.items)
    cursor = page.next
  } while (cursor !== undefined)
  return out
}

function view (n: NodeRecord, online: boolean, extra: FleetExtra | undefined): Record<string, unknown> {
  return {
    type: n.destinationType,
    id: n.destinationId,
    site: n.properties.site ?? '',
    properties: n.properties,
    protocol: n.protocol,
    codeVersion: n.codeVersion,
    online,
    registeredAt: n.registeredAt,
    lastHeartbeat: n.lastHeartbeat,
    plugins: n.status ?? {},
    ...(extra ?? {})
  }
}

function matches (n: NodeRecord, q: string): boolean {
  const hay = [n.destinationType, n.destinationId, ...Object.entries(n.properties).map(([k, v]) => `${k}=${v}`)]
  return hay.some((h) => h.toLowerCase().includes(q))
}

export function registerFleetRoutes (
  app: FastifyInstance,
  deps: { store: Store, offlineAfterMs: number, describe: () => Describe[], events: FleetEvents }
): void {
  const orgParams = { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] } as const
  const describe = async (orgId: string, nodes: NodeRecord[]): Promise<Map<string, FleetExtra>> => {
    const out = new Map<string, FleetExtra>()
    for (const d of deps.describe()) {
      for (const [id, extra] of await d(orgId, nodes)) out.set(id, { ...out.get(id), ...extra })
    }
    return out
  }
  app.get<{ Params: { orgID: string }, Querystring: FleetQuery }>(
    '/api/v1/fleet/:orgID',
    {
      schema: {
        summary: 'Nodes of an org with presence, site, plugin reports and config state; filtered and paged',
        params: orgParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            site: { type: 'string', maxLength: 128 },
            state: { enum: [...STATES] },
            q: { type: 'string', maxLength: 128 },
            offset: { type: 'integer', minimum: 0, default: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 }
          }
        }
      }
    },
    async (req) => {
      const orgId = req.params.orgID
      requireOrg(req.identity, orgId)
      const { site, state, q, offset = 0, limit = 50 } = req.query
      const now = Date.now()
      const all = await allNodes(deps.store, orgId)
      const online = (n: NodeRecord): boolean => isOnline(n, deps.offlineAfterMs, now)
      const sites = [...new Set(all.map((n) => n.properties.site ?? '').filter((s) => s !== ''))].sort()
      const counts = { total: all.length, online: all.filter(online).length, offline: 0 }
      counts.offline = counts.total - counts.online
      let hits = all.filter((n) =>
        (site === undefined || site === '' || n.properties.site === site) &&
        (q === undefined || q === '' || matches(n, q.toLowerCase())) &&
        (state !== 'online' || online(n)) &&
        (state !== 'offline' || !online(n)))
      let extras: Map<string, FleetExtra> | undefined
      if (state === 'ok' || state === 'behind' || state === 'error' || state === 'drift') {
        // Needs every candidate's extension state: the price of this filter, paid only when used.
        extras = await describe(orgId, hits)
        hits = hits.filter((n) => extras?.get(n.destinationId)?.state === state)
      }
      const page = hits.slice(offset, offset + limit)
      extras ??= await describe(orgId, page)
      return {
        total: hits.length,
        offset,
        limit,
        counts,
        sites,
        nodes: page.map((n) => view(n, online(n), extras?.get(n.destinationId)))
      }
    }
  )

  app.get<{ Params: { orgID: string, destType: string, destID: string } }>(
    '/api/v1/fleet/:orgID/:destType/:destID',
    {
      schema: {
        summary: 'One node as the fleet view shows it',
        params: {
          type: 'object',
          properties: { orgID: nameSchema, destType: nameSchema, destID: nameSchema },
          required: ['orgID', 'destType', 'destID']
        }
      }
    },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      const n = await deps.store.nodes.get({ orgId: p.orgID, destinationType: p.destType, destinationId: p.destID })
      if (n === undefined) throw new NotFoundError(`No node ${p.destType}/${p.destID} in org ${p.orgID}`)
      const extras = await describe(p.orgID, [n])
      return view(n, isOnline(n, deps.offlineAfterMs), extras.get(n.destinationId))
    }
  )

  app.get<{ Params: { orgID: string } }>(
    '/api/v1/fleet/:orgID/events',
    { schema: { summary: 'Server-sent events: `fleet` whenever a node of the org changed (at most one a second)', params: orgParams } },
    async (req, reply) => {
      const orgId = req.params.orgID
      requireOrg(req.identity, orgId)
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-request-id': req.id
      })
      res.write('retry: 3000\n\n')
      const stop = deps.events.subscribe(orgId, (at) => {
        res.write(`event: fleet\ndata: ${JSON.stringify({ at })}\n\n`)
      })
      // A comment every 25 s keeps proxies from closing an idle stream.
      const keep = setInterval(() => { res.write(': keep-alive\n\n') }, 25_000)
      const end = (): void => { clearInterval(keep); stop() }
      res.once('close', end)
      req.raw.once('close', end)
    }
  )
}
