/**
 * Commands to one edge: start, stop, pause or resume one of its plugins (an org admin; audited).
 * The command goes down the edge's own topic; the edge answers with a heartbeat whose plugin
 * states the fleet and node views show. An edge that is away gets it when it is back only if the
 * broker queued it (QoS 1 session): the answer says whether the edge was online.
 */
import type { FastifyInstance } from 'fastify'
import { nameSchema } from '../api/server.js'
import { NotFoundError } from '../common/errors.js'
import type { DestinationKey } from '../common/model.js'
import type { DownMessage } from '../common/protocol/messages.js'
import { requireOrg } from '../security/acl.js'
import type { Store } from '../storage/index.js'
import { isOnline } from './presence.js'

type Action = 'start' | 'stop' | 'pause' | 'resume'

export function registerNodeCommandRoutes (
  app: FastifyInstance,
  deps: { store: Store, offlineAfterMs: number, send: (node: DestinationKey, msg: Extract<DownMessage, { kind: 'plugin' }>) => Promise<void> }
): void {
  app.post<{ Params: { orgID: string, destType: string, destID: string, name: string, action: Action } }>(
    '/api/v1/nodes/:orgID/:destType/:destID/plugins/:name/:action',
    {
      schema: {
        summary: "Start, stop, pause or resume a plugin of one edge (sent as a command; the edge's heartbeat shows the result)",
        params: {
          type: 'object',
          required: ['orgID', 'destType', 'destID', 'name', 'action'],
          properties: {
            orgID: nameSchema,
            destType: nameSchema,
            destID: nameSchema,
            name: nameSchema,
            action: { enum: ['start', 'stop', 'pause', 'resume'] }
          }
        }
      }
    },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const dest = { orgId: p.orgID, destinationType: p.destType, destinationId: p.destID }
      const node = await deps.store.nodes.get(dest)
      if (node === undefined) throw new NotFoundError(`No node ${p.destType}/${p.destID} in org ${p.orgID}`)
      await deps.send(dest, { v: 1, kind: 'plugin', plugin: p.name, action: p.action })
      await deps.store.audit.append({
        at: new Date().toISOString(),
        orgId: p.orgID,
        actor: who.appKey,
        action: `plugin.${p.action}`,
        target: `${p.destType}/${p.destID}`,
        detail: { plugin: p.name }
      })
      return await reply.code(202).send({
        node: `${p.destType}/${p.destID}`,
        plugin: p.name,
        action: p.action,
        sent: true,
        online: isOnline(node, deps.offlineAfterMs)
      })
    }
  )
}
