/**
 * The ESS local API for its plugins: their state, and start/stop/pause/resume (an org admin of
 * this edge's org). The same actions arrive from the CSS as `plugin` commands (handlers/plugin.ts).
 */
import type { FastifyInstance } from 'fastify'
import { nameSchema } from '../api/server.js'
import { requireOrg } from '../security/acl.js'
import { PLUGIN_ACTIONS, type PluginAction, type PluginHost } from './plugins.js'

export function registerPluginRoutes (app: FastifyInstance, host: PluginHost, orgId: string): void {
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
