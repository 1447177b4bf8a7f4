/**
 * The seed's HTTP API for edges that use HTTP instead of MQTT. Each edge authenticates with its
 * own node credentials (Basic auth `org/type/id` and its secret) and sees only its own config:
 * full config with ETag / If-None-Match, delta since a version, heartbeat, and a WebSocket that
 * pushes a notice on every new version.
 */
import type http from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { forbidden, nameSchema } from '../../api/server.js'
import { NotFoundError, SyncError, SyncErrorCode } from '../../common/errors.js'
import { parseNodeUsername } from '../../common/protocol/topics.js'
import { parseBasicAuth, type Authenticator, type Identity } from '../../security/index.js'
import { acceptWebSockets, type AcceptedSocket } from '../../transport/index.js'
import type { Logger } from '../../common/log.js'
import type { SettingStore } from '../../storage/index.js'
import { diff } from './layers.js'
import { NoticeLog, type Notice } from './notice-log.js'
import type { EmsService } from './config-service.js'

const edgeParams = { type: 'object', properties: { edgeID: nameSchema }, required: ['edgeID'] } as const

/** The edge's org, if `who` is the node `edgeID` of the EMS destination type. */
function edgeOrg (who: Identity | undefined, edgeId: string, edgeType: string): string {
  const node = who?.role === 'node' ? parseNodeUsername(who.appKey) : undefined
  if (node === undefined || node.destinationId !== edgeId || node.destinationType !== edgeType) {
    throw forbidden(`Only edge ${edgeId}'s own credentials may use its config API`)
  }
  return node.orgId
}

/** How often an instance looks for other instances' config notices, and how long they are kept. */
const NOTICES = { pollMs: 1000, keepMs: 60_000 }

export function registerSeedRoutes (
  app: FastifyInstance,
  ems: EmsService,
  edgeType: string,
  auth: Authenticator,
  shared: { settings: SettingStore | undefined; log: Logger }
): () => Promise<void> {
  const org = (req: FastifyRequest): string =>
    edgeOrg(req.identity, (req.params as { edgeID: string }).edgeID, edgeType)

  app.get<{ Params: { edgeID: string } }>(
    '/api/v1/edges/:edgeID/config',
    {
      schema: {
        summary: "Seed API: the edge's full config (ETag; If-None-Match answers 304)",
        params: edgeParams
      }
    },
    async (req, reply) => {
      const edgeId = req.params.edgeID
      const cur = await ems.current(org(req), edgeId)
      if (cur === undefined) throw new NotFoundError(`No config published for ${edgeId} yet`)
      const tag = `"v${cur.version}"`
      if (req.headers['if-none-match'] === tag) return await reply.code(304).header('etag', tag).send()
      return await reply.header('etag', tag).send(cur.config)
    }
  )

  app.get<{ Params: { edgeID: string }, Querystring: { since: number } }>(
    '/api/v1/edges/:edgeID/config/delta',
    {
      schema: {
        summary:
          'Seed API: what changed since a version (the full config when that version is no longer kept)',
        params: edgeParams,
        querystring: {
          type: 'object',
          required: ['since'],
          properties: { since: { type: 'integer', minimum: 0 } }
        }
      }
    },
    async (req) => {
      const edgeId = req.params.edgeID
      const orgId = org(req)
      const since = req.query.since
      const cur = await ems.current(orgId, edgeId)
      if (cur === undefined) throw new NotFoundError(`No config published for ${edgeId} yet`)
      if (since === cur.version) return { from: since, to: cur.version, changes: [] }
      if (since > cur.version) {
        // A version the cloud never published: the edge's state is not ours; it must start over.
        throw new SyncError(
          SyncErrorCode.CONFLICT,
          `Version ${since} was never published for ${edgeId}: the latest is ${cur.version}; ` +
            `fetch the full config (GET /api/v1/edges/${edgeId}/config)`
        )
      }
      const old = await ems.at(orgId, edgeId, since)
      if (old === undefined) return { from: since, to: cur.version, full: cur.config }
      const strip = (c: Record<string, unknown>): Record<string, unknown> => {
        const { version: _v, timestamp: _t, ...rest } = c
        return rest
      }
      return { from: since, to: cur.version, changes: diff(strip(old) as never, strip(cur.config) as never) }
    }
  )

  app.post<{ Params: { edgeID: string } }>(
    '/api/v1/edges/:edgeID/heartbeat',
    {
      schema: {
        summary: 'Seed API: the edge reports its version, sync status and errors',
        params: edgeParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            version: { type: 'integer', minimum: 0 },
            sync_status: {
              enum: ['synced', 'applied', 'pending', 'failed', 'rolled_back'],
              description:
                'synced: has the latest; applied: running it; pending: applying; failed: refused it; ' +
                'rolled_back: ran it, went back to the previous version'
            },
            errors: { type: 'array', maxItems: 20, items: { type: 'string', maxLength: 1000 } },
            properties: {
              type: 'object',
              maxProperties: 32,
              additionalProperties: { type: 'string', maxLength: 256 }
            },
            stats: { type: 'object', maxProperties: 32 }
          }
        }
      }
    },
    async (req) => {
      const edgeId = req.params.edgeID
      return await ems.heartbeat(org(req), edgeId, req.body as Parameters<EmsService['heartbeat']>[2])
    }
  )

  // WebSocket notices: one message per new version of this edge's config.
  const sockets = new Map<string, Set<AcceptedSocket>>()
  const notify = (e: Notice): void => {
    for (const s of sockets.get(`${e.orgId}/${e.edgeId}`) ?? []) {
      s.send(JSON.stringify({ type: 'config_updated', edge_id: e.edgeId, version: e.version }))
    }
  }
  // The edge's socket may be open on another CSS instance: the notice goes there through the store.
  const others =
    shared.settings === undefined
      ? undefined
      : new NoticeLog(shared.settings, notify, () => sockets.size > 0, NOTICES, shared.log)
  others?.start()
  ems.events.on('published', (e: Notice) => {
    notify(e)
    others?.post(e).catch((err: unknown) => {
      shared.log.warn('Could not share a config notice with other instances', { err })
    })
  })
  const wsPath = /^\/ws\/edges\/([A-Za-z0-9][A-Za-z0-9_.@:+-]{0,127})\/notify$/
  const identityOf = async (req: http.IncomingMessage): Promise<Identity | undefined> => {
    const cred = parseBasicAuth(req.headers.authorization)
    return cred === undefined ? undefined : await auth.check(cred.key, cred.secret)
  }
  const closeSockets = acceptWebSockets(
    app.server,
    (p) => wsPath.test(p),
    async (req) => {
      const edgeId = wsPath.exec((req.url ?? '').split('?')[0] ?? '')?.[1] ?? ''
      try {
        edgeOrg(await identityOf(req), edgeId, edgeType)
        return true
      } catch {
        return false
      }
    },
    (socket, req) => {
      const edgeId = wsPath.exec((req.url ?? '').split('?')[0] ?? '')?.[1] ?? ''
      void identityOf(req)
        .then((who) => {
          const k = `${edgeOrg(who, edgeId, edgeType)}/${edgeId}`
          const set = sockets.get(k) ?? new Set<AcceptedSocket>()
          sockets.set(k, set)
          set.add(socket)
          socket.onClose(() => {
            set.delete(socket)
          })
          socket.send(JSON.stringify({ type: 'hello', edge_id: edgeId }))
        })
        .catch(() => {
          socket.close()
        })
    }
  )
  return async () => {
    others?.close()
    await closeSockets()
  }
}
