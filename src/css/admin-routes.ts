/** CSS routes for ACLs (Open Horizon's security API), users, object destinations, webhooks and resend. */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { NotFoundError, ValidationError } from '../common/errors.js'
import type { AclEntry, AclKind, ObjectKey } from '../common/model.js'
import { nameSchema } from '../api/server.js'
import type { Store } from '../storage/index.js'
import { requireObjectAccess, requireOrg } from '../security/acl.js'
import type { ObjectService } from './objects.js'
import { changeWebhook, webhookChangeSchema } from '../api/notifier.js'
import { listPolicies, policyQuerySchema, type PolicyQuery } from './policy-routes.js'

const aclParams = {
  type: 'object',
  properties: { type: { enum: ['objects', 'destinations'] }, orgID: nameSchema, key: nameSchema },
  required: ['type', 'orgID']
} as const
const objParams = {
  type: 'object',
  properties: { orgID: nameSchema, objectType: nameSchema, objectID: nameSchema },
  required: ['orgID', 'objectType', 'objectID']
} as const

interface AclUserIn {
  ACLUserType?: string
  aclUserType?: string
  Username?: string
  username?: string
  ACLRole?: string
  aclRole?: string
}

function toEntries (orgId: string, kind: AclKind, key: string, users: AclUserIn[]): AclEntry[] {
  return users.map((u) => {
    const userType = (u.ACLUserType ?? u.aclUserType ?? 'user') as AclEntry['userType']
    const username = u.Username ?? u.username ?? ''
    const role = (
      kind === 'destinations' ? 'na' : (u.ACLRole ?? u.aclRole ?? 'aclReader')
    ) as AclEntry['role']
    if (
      !['user', 'node'].includes(userType) ||
      username === '' ||
      !['aclReader', 'aclWriter', 'na'].includes(role)
    ) {
      throw new ValidationError(
        '/users: each entry needs ACLUserType user|node, Username and (for objects) ACLRole aclReader|aclWriter'
      )
    }
    return { orgId, kind, key, username, userType, role }
  })
}

// `users` (entries) is Open Horizon's API; `usernames` (names only) is what its published Go and
// Python clients send: plain users, with the full access the clients' documentation describes.
const aclBody = {
  type: 'object',
  required: ['action'],
  anyOf: [{ required: ['users'] }, { required: ['usernames'] }],
  properties: {
    action: { enum: ['add', 'remove'] },
    users: { type: 'array', maxItems: 1000, items: { type: 'object' } },
    usernames: { type: 'array', maxItems: 1000, items: { type: 'string' } }
  }
} as const

interface AclChange {
  action: 'add' | 'remove'
  users?: AclUserIn[]
  usernames?: string[]
}

function changedUsers (body: AclChange): AclUserIn[] {
  const named = (body.usernames ?? []).map((Username) => ({ ACLUserType: 'user', Username, ACLRole: 'aclWriter' }))
  return [...(body.users ?? []), ...named]
}

export function registerAdminRoutes (app: FastifyInstance, store: Store, objects: ObjectService): void {
  const aclView = (e: AclEntry): Record<string, string> => ({
    ACLUserType: e.userType,
    Username: e.username,
    ACLRole: e.role
  })

  // As Open Horizon: `?all_keys=true` lists the keys (the all-types key as "*"); otherwise the
  // users of `?key=` (no key, or "*": the all-types entry). Open Horizon's clients put the key in
  // the path (`.../{org}/{key}`), which Open Horizon ignores; here it names the key, as they mean.
  const aclQuery = {
    type: 'object',
    properties: {
      key: { type: 'string', maxLength: 128 },
      all_keys: { type: 'boolean' },
      acl_usertype: { enum: ['user', 'node'] }
    }
  } as const
  type AclQuery = { key?: string; all_keys?: boolean; acl_usertype?: 'user' | 'node' }
  type AclGet = { Params: { type: string, orgID: string, key?: string }, Querystring: AclQuery }
  const getAcl = async (req: FastifyRequest<AclGet>): Promise<unknown> => {
    const p = req.params
    requireOrg(req.identity, p.orgID, true)
    const q = req.query
    const kind = p.type as AclKind
    if (q.all_keys !== true) {
      const named = p.key ?? q.key
      const key = named === undefined || named === '*' ? '' : named
      const list = (await store.users.listAcl(p.orgID, kind, key)).filter(
        (e) => q.acl_usertype === undefined || e.userType === q.acl_usertype
      )
      if (list.length === 0) throw new NotFoundError('No ACL entries')
      return list.map(aclView)
    }
    const keys = [
      ...new Set((await store.users.listAcl(p.orgID, kind)).map((e) => (e.key === '' ? '*' : e.key)))
    ]
    if (keys.length === 0) throw new NotFoundError('No ACL entries')
    return keys
  }
  app.get<AclGet>(
    '/api/v1/security/:type/:orgID',
    {
      schema: {
        summary: 'The users of one ACL key (?key=; none or * for all types), or every key (?all_keys=true)',
        params: aclParams,
        querystring: aclQuery
      }
    },
    getAcl
  )
  app.get<AclGet>(
    '/api/v1/security/:type/:orgID/:key',
    { schema: { summary: 'The users of the ACL of one key (as Open Horizon\'s clients ask)', params: aclParams, querystring: aclQuery } },
    getAcl
  )

  const putAcl = async (
    orgId: string,
    kind: AclKind,
    key: string,
    body: AclChange
  ): Promise<void> => {
    const list = toEntries(orgId, kind, key, changedUsers(body))
    if (body.action === 'add') await store.users.putAcl(list)
    else for (const e of list) await store.users.removeAcl(orgId, kind, key, e.userType, e.username)
  }
  app.put<{ Params: { type: string, orgID: string, key: string }, Body: AclChange }>(
    '/api/v1/security/:type/:orgID/:key',
    { schema: { summary: 'Add or remove users on the ACL of one type', params: aclParams, body: aclBody } },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      await putAcl(
        p.orgID,
        p.type as AclKind,
        p.key,
        req.body
      )
      await store.audit.append({
        at: new Date().toISOString(),
        orgId: p.orgID,
        actor: who.appKey,
        action: 'acl.change',
        target: `${p.type}/${p.key}`
      })
      return await reply.code(204).send()
    }
  )
  app.put<{ Params: { type: string, orgID: string }, Body: AclChange }>(
    '/api/v1/security/:type/:orgID',
    { schema: { summary: 'Add or remove users on the all-types ACL', params: aclParams, body: aclBody } },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      await putAcl(
        p.orgID,
        p.type as AclKind,
        '',
        req.body
      )
      await store.audit.append({
        at: new Date().toISOString(),
        orgId: p.orgID,
        actor: who.appKey,
        action: 'acl.change',
        target: `${p.type}/*`
      })
      return await reply.code(204).send()
    }
  )
  app.delete<{ Params: { type: string, orgID: string, key: string, aclUserType: string, username: string } }>(
    '/api/v1/security/:type/:orgID/:key/:aclUserType/:username',
    {
      schema: {
        summary: 'Remove one user from an ACL',
        params: {
          type: 'object',
          properties: {
            ...aclParams.properties,
            aclUserType: { enum: ['user', 'node'] },
            username: { type: 'string', maxLength: 256 }
          },
          required: ['type', 'orgID', 'key', 'aclUserType', 'username']
        }
      }
    },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const gone = await store.users.removeAcl(
        p.orgID,
        p.type as AclKind,
        p.key,
        p.aclUserType as AclEntry['userType'],
        p.username
      )
      if (!gone) throw new NotFoundError('No such ACL entry')
      await store.audit.append({
        at: new Date().toISOString(),
        orgId: p.orgID,
        actor: who.appKey,
        action: 'acl.remove',
        target: `${p.type}/${p.key}/${p.aclUserType}/${p.username}`
      })
      return await reply.code(204).send()
    }
  )

  const objKey = (p: { orgID: string, objectType: string, objectID: string }): ObjectKey => ({
    orgId: p.orgID,
    objectType: p.objectType,
    objectId: p.objectID
  })
  app.put<{ Params: { orgID: string, objectType: string, objectID: string } }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/destinations',
    {
      schema: {
        summary: 'Replace the destinations list',
        params: objParams,
        body: { type: 'array', maxItems: 100000, items: { type: 'string', maxLength: 300 } }
      }
    },
    async (req, reply) => {
      const key = objKey(req.params)
      const list = req.body as string[]
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, true, {
        destinationsList: list
      })
      await objects.setDestinations(key, () => list)
      return await reply.code(204).send()
    }
  )
  app.post<{ Params: { orgID: string, objectType: string, objectID: string }, Body: { action: 'add' | 'remove'; destinations: string[] } }>(
    '/api/v1/objects/:orgID/:objectType/:objectID/destinations',
    {
      schema: {
        summary: 'Add or remove destinations',
        params: objParams,
        body: {
          type: 'object',
          required: ['action', 'destinations'],
          properties: {
            action: { enum: ['add', 'remove'] },
            destinations: { type: 'array', maxItems: 100000, items: { type: 'string', maxLength: 300 } }
          }
        }
      }
    },
    async (req, reply) => {
      const key = objKey(req.params)
      const body = req.body
      await requireObjectAccess(store.users, req.identity, key.orgId, key.objectType, true, {
        destinationsList: body.destinations
      })
      await objects.setDestinations(key, (cur) =>
        body.action === 'add'
          ? [...new Set([...cur, ...body.destinations])]
          : cur.filter((d) => !body.destinations.includes(d))
      )
      return await reply.code(204).send()
    }
  )

  app.put<{ Params: { orgID: string, objectType: string }, Body: { action: 'register' | 'delete'; url: string } }>(
    '/api/v1/objects/:orgID/:objectType',
    {
      schema: {
        summary: 'Register or delete a webhook for objects of a type arriving from edges',
        params: {
          type: 'object',
          properties: { orgID: nameSchema, objectType: nameSchema },
          required: ['orgID', 'objectType']
        },
        body: webhookChangeSchema
      }
    },
    async (req, reply) => {
      const p = req.params
      await requireObjectAccess(store.users, req.identity, p.orgID, p.objectType, true)
      await changeWebhook(store.webhooks, p.orgID, p.objectType, req.body)
      return await reply.code(204).send()
    }
  )

  app.get<{
    Params: { orgID: string },
    Querystring: {
      filters?: boolean
      list_object_type?: boolean
      objectType?: string
      objectID?: string
      destinationType?: string
      destinationID?: string
      deleted?: boolean
      since?: number
      limit?: number
      cursor?: string
      destination_policy?: boolean
    } & PolicyQuery
  }>(
    '/api/v1/objects/:orgID',
    {
      schema: {
        summary: 'Filtered listing (filters=true) or the distinct object types (list_object_type=true)',
        params: { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] },
        querystring: {
          type: 'object',
          properties: {
            filters: { type: 'boolean' },
            list_object_type: { type: 'boolean' },
            objectType: nameSchema,
            objectID: nameSchema,
            destinationType: nameSchema,
            destinationID: nameSchema,
            deleted: { type: 'boolean' },
            limit: { type: 'integer', minimum: 1, maximum: 1000 },
            cursor: { type: 'string', maxLength: 512 },
            ...policyQuerySchema
          }
        }
      }
    },
    async (req, reply) => {
      const orgId = req.params.orgID
      const q = req.query
      const who = requireOrg(req.identity, orgId)
      if (q.destination_policy === true) return await listPolicies(store, who, [orgId], q)
      if (q.filters !== true && q.list_object_type !== true) {
        throw new ValidationError('Use filters=true, list_object_type=true or destination_policy=true')
      }
      // Open Horizon's `since` is in Unix nanoseconds.
      const since = q.since === undefined ? undefined : new Date(Math.floor(q.since / 1e6)).toISOString()
      const page = await store.objects.list({
        orgId,
        ...(q.objectType === undefined ? {} : { objectType: q.objectType }),
        ...(q.destinationType === undefined ? {} : { destinationType: q.destinationType }),
        ...(q.destinationID === undefined ? {} : { destinationId: q.destinationID }),
        ...(since === undefined ? {} : { since }),
        deleted: q.deleted ?? false,
        limit: q.limit ?? 1000,
        ...(q.cursor === undefined ? {} : { cursor: q.cursor })
      })
      // Org users see only the types their ACLs allow.
      const visible = []
      for (const o of page.items) {
        if (q.objectID !== undefined && o.key.objectId !== q.objectID) continue
        try {
          await requireObjectAccess(store.users, who, orgId, o.key.objectType, false)
          visible.push(o)
        } catch {}
      }
      if (page.next !== undefined) void reply.header('x-next-cursor', page.next)
      if (q.list_object_type === true) {
        const types = [...new Set(visible.map((o) => o.key.objectType))]
        if (types.length === 0) throw new NotFoundError('No object types')
        return types
      }
      if (visible.length === 0) throw new NotFoundError('No objects')
      return visible.map((o) => ({ ...o.meta, status: o.status }))
    }
  )

  // POST from Open Horizon's Python client, PUT from its Go client.
  app.route({
    method: ['POST', 'PUT'],
    url: '/api/v1/resend',
    schema: { summary: 'Only meaningful on an ESS (400 on the CSS, as Open Horizon)' },
    handler: async () => {
      throw new ValidationError('Resend is an ESS call: the CSS resends to an edge whenever it registers')
    }
  })
}
