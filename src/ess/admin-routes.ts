/**
 * The ESS local API for its admin (the status page uses it): every object held, and the plugins'
 * state with start/stop/pause/resume (an org admin of this edge's org). The same actions arrive
 * from the CSS as `plugin` commands (handlers/plugin.ts).
 */
import type { FastifyInstance } from 'fastify'
import { nameSchema } from '../api/server.js'
import { requireOrg } from '../security/acl.js'
import type { Store } from '../storage/index.js'
import { PLUGIN_ACTIONS, type PluginAction, type PluginHost } from './plugins.js'

export function registerEssAdminRoutes (app: FastifyInstance, host: PluginHost, store: Store, orgId: string): void {
  app.get('/api/v1/holdings', { schema: { summary: 'Every object this edge holds, with its state (an org admin)' } },
    async (req) => {
      requireOrg(req.identity, orgId, true)
      const out: Array<Record<string, unknown>> = []
      let cursor: string | undefined
      do {
        const page = await store.objects.list({ orgId, limit: 1000, ...(cursor === undefined ? {} : { cursor }) })
        for (const o of page.items) {
          out.push({
            objectType: o.key.objectType,
            objectID: o.key.objectId,
            instanceID: o.meta.instanceID,
            status: o.status,
            objectSize: o.meta.objectSize,
            deleted: o.meta.deleted === true,
            lastUpdate: o.meta.lastUpdate
          })
        }
        cursor = page.next
      } while (cursor !== undefined && out.length < 10_000)
      return out
    })
  app.get('/api/v1/plugins', { schema: { summary: "This edge's plugins: state, objects waiting, own report" } },
    async (req) => {
      requireOrg(req.identity, orgId)
      return host.status()
    })
  app.post<{ Params: { name: string, action: PluginAction } }>(
    '/api/v1/plugins/:name/:action',
    {
      schema: {
        summary: 'Start, stop, pause or resume a plugin (a paused EMS plugin keeps its config running and holds new ones)',
        params: {
          type: 'object',
          required: ['name', 'action'],
          properties: { name: nameSchema, action: { enum: [...PLUGIN_ACTIONS] } }
        }
      }
    },
    async (req) => {
      requireOrg(req.identity, orgId, true)
      const { name, action } = req.params
      return { plugin: name, state: await host.control(name, action) }
    }
  )
}
