/**
 * Open Horizon's organizations API. Orgs here are implicit: an org exists once it has a user or an
 * object, and one broker serves them all (Open Horizon can give each org its own broker, which is
 * what `address` is for). Deleting an org removes everything of it from the CSS.
 */
import type { FastifyInstance } from 'fastify'
import { NotFoundError, SyncError, SyncErrorCode, ValidationError } from '../common/errors.js'
import type { AclKind } from '../common/model.js'
import { forbidden, nameSchema } from '../api/server.js'
import { requireOrg } from '../security/acl.js'
import type { Identity } from '../security/index.js'
import type { Store } from '../storage/index.js'

export interface OrgRouteDeps {
  store: Store
  brokerUrls: readonly string[]
  /** Drops a node's live connections (it is removed with its org). */
  disconnect: (username: string) => void
}

const orgParams = { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] } as const

export function registerOrgRoutes (app: FastifyInstance, d: OrgRouteDeps): void {
  const { store } = d
  const address = d.brokerUrls[0] ?? ''

  app.get('/api/v1/organizations', { schema: { summary: 'The organizations (a sync admin: all; an org admin: its own)' } }, async (req) => {
    const who = req.identity
    if (who?.role !== 'syncAdmin' && who?.role !== 'orgAdmin') throw forbidden('Needs an admin')
    const users = (await store.users.list()).map((u) => u.orgId)
    const orgs = [...new Set([...users, ...(await store.objects.orgs())])]
      .filter((o) => o !== '*' && (who.role === 'syncAdmin' || o === who.orgId))
      .sort()
    if (orgs.length === 0) throw new NotFoundError('No organizations')
    return orgs.map((o) => ({ 'org-id': o, address }))
  })

  app.put<{ Params: { orgID: string }, Body: { address?: string } }>(
    '/api/v1/organizations/:orgID',
    {
      schema: {
        summary: 'Accepts an organization (orgs need no creation here; one broker serves every org)',
        params: orgParams,
        body: {
          type: 'object',
          properties: {
            orgID: { type: 'string' },
            address: { type: 'string', maxLength: 1024 },
            user: { type: 'string' },
            password: { type: 'string' }
          }
        }
      }
    },
    async (req, reply) => {
      const who = requireOrg(req.identity, req.params.orgID, true)
      const wanted = req.body?.address ?? ''
      if (wanted !== '' && !d.brokerUrls.includes(wanted)) {
        throw new ValidationError(
          `edgesync serves every org on its own broker (${d.brokerUrls.join(', ')}); an org cannot have a broker of its own`
        )
      }
      await audit(store, who, req.params.orgID, 'org.update')
      return await reply.code(204).send()
    }
  )

  app.delete<{ Params: { orgID: string } }>(
    '/api/v1/organizations/:orgID',
    {
      schema: {
        summary: 'Removes an organization: its objects, nodes, users, ACLs and webhooks (edges keep their copies)',
        params: orgParams
      }
    },
    async (req, reply) => {
      const orgId = req.params.orgID
      const who = requireOrg(req.identity, orgId, true)
      if (orgId === '*') throw new SyncError(SyncErrorCode.VALIDATION, 'Not an organization')
      await removeOrg(d, orgId)
      await audit(store, who, orgId, 'org.delete')
      return await reply.code(204).send()
    }
  )
}

async function audit (store: Store, who: Identity, orgId: string, action: string): Promise<void> {
  await store.audit.append({ at: new Date().toISOString(), orgId, actor: who.appKey, action, target: orgId })
}

async function removeOrg (d: OrgRouteDeps, orgId: string): Promise<void> {
  const { store } = d
  const types = new Set<string>()
  // Removing while listing would move the cursor under our feet: each pass takes the first page.
  for (;;) {
    const page = await store.objects.list({ orgId, limit: 500 })
    if (page.items.length === 0) break
    for (const o of page.items) {
      types.add(o.key.objectType)
      await store.deliveries.removeByObject(o.key)
      for (const ref of await store.objects.remove(o.key)) await store.blobs.remove(ref)
    }
  }
  for (;;) {
    const page = await store.nodes.list({ orgId, limit: 500 })
    if (page.items.length === 0) break
    for (const n of page.items) {
      await store.nodes.remove(n)
      await store.deliveries.removeByDestination(n)
    }
  }
  for (const u of await store.users.list(orgId)) {
    await store.users.remove(u.appKey)
    if (u.role === 'node') d.disconnect(u.appKey)
  }
  for (const kind of ['objects', 'destinations'] as AclKind[]) {
    for (const e of await store.users.listAcl(orgId, kind)) {
      await store.users.removeAcl(orgId, kind, e.key, e.userType, e.username)
    }
  }
  for (const type of types) {
    for (const h of await store.webhooks.list(orgId, type)) await store.webhooks.remove(orgId, type, h.url)
  }
}
