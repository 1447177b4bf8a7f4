/**
 * App keys and node credentials: create, list, disable, rotate, remove, and the audit log. Every
 * change is audited (who, what, when). A disabled, rotated or removed key stops working at once:
 * REST checks read the user record on every call, and the broker drops the node's live connection.
 */
import type { FastifyInstance } from 'fastify'
import { NotFoundError, SyncError, SyncErrorCode } from '../common/errors.js'
import type { Role, UserRecord } from '../common/model.js'
import { nodeUsername } from '../common/protocol/topics.js'
import { nameSchema } from '../api/server.js'
import { generateSecret, hashGeneratedSecret, type Identity, type OrgSigningKeys } from '../security/index.js'
import type { Store } from '../storage/index.js'
import { requireOrg } from '../security/acl.js'

const orgParams = { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] } as const
const userParams = {
  type: 'object',
  properties: { orgID: nameSchema, appKey: nameSchema },
  required: ['orgID', 'appKey']
} as const
const destParams = {
  type: 'object',
  properties: { orgID: nameSchema, destType: nameSchema, destID: nameSchema },
  required: ['orgID', 'destType', 'destID']
} as const

export interface UserRouteDeps {
  store: Store
  /** Drops a node's live broker connection (embedded broker; external brokers re-check on reconnect). */
  disconnect: (username: string) => void
  keys: OrgSigningKeys
  /** Rotates the org's signing key and announces the new one to its nodes. */
  rotateKey: (orgId: string) => Promise<string>
}

function userView (u: UserRecord): Record<string, unknown> {
  return { appKey: u.appKey, orgID: u.orgId, role: u.role, disabled: u.disabled, created: u.created }
}

export function registerUserRoutes (app: FastifyInstance, d: UserRouteDeps): void {
  const { store } = d
  const audit = async (who: Identity, orgId: string, action: string, target: string): Promise<void> => {
    await store.audit.append({ at: new Date().toISOString(), orgId, actor: who.appKey, action, target })
  }
  /** The user `appKey` of `orgId`, which `who` (an org admin there) may manage. */
  const target = async (who: Identity, orgId: string, appKey: string): Promise<UserRecord> => {
    const u = await store.users.get(appKey)
    if (u === undefined || u.orgId !== orgId) throw new NotFoundError(`No app key ${appKey} in org ${orgId}`)
    if (u.role === 'syncAdmin' && who.role !== 'syncAdmin') {
      throw new SyncError(SyncErrorCode.FORBIDDEN, 'Only a sync admin manages sync admins')
    }
    return u
  }

  app.post<{ Params: { orgID: string }, Body: { appKey: string; role?: Role } }>(
    '/api/v1/users/:orgID',
    {
      schema: {
        summary: 'Create an app key in an org; the secret is shown once (edgesync)',
        params: orgParams,
        body: {
          type: 'object',
          required: ['appKey'],
          additionalProperties: false,
          properties: { appKey: nameSchema, role: { enum: ['orgAdmin', 'user'] } }
        }
      }
    },
    async (req, reply) => {
      const orgId = req.params.orgID
      const who = requireOrg(req.identity, orgId, true)
      const body = req.body
      if ((await store.users.get(body.appKey)) !== undefined) {
        throw new SyncError(SyncErrorCode.CONFLICT, `App key ${body.appKey} exists`)
      }
      const secret = generateSecret()
      await store.users.put({
        appKey: body.appKey,
        orgId,
        role: body.role ?? 'user',
        secretHash: hashGeneratedSecret(secret),
        disabled: false,
        created: new Date().toISOString()
      })
      await audit(who, orgId, 'user.add', body.appKey)
      return await reply
        .code(201)
        .send({ appKey: body.appKey, secret, orgID: orgId, role: body.role ?? 'user' })
    }
  )

  app.get<{ Params: { orgID: string } }>(
    '/api/v1/users/:orgID',
    {
      schema: {
        summary: 'App keys and node identities of an org (never their secrets) (edgesync)',
        params: orgParams
      }
    },
    async (req) => {
      const orgId = req.params.orgID
      requireOrg(req.identity, orgId, true)
      return (await store.users.list(orgId)).map(userView)
    }
  )

  app.put<{ Params: { orgID: string, appKey: string }, Body: { disabled: boolean } }>(
    '/api/v1/users/:orgID/:appKey',
    {
      schema: {
        summary: 'Disable or enable an app key; takes effect at once (edgesync)',
        params: userParams,
        body: {
          type: 'object',
          required: ['disabled'],
          additionalProperties: false,
          properties: { disabled: { type: 'boolean' } }
        }
      }
    },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const u = await target(who, p.orgID, p.appKey)
      if (u.appKey === who.appKey) {
        throw new SyncError(SyncErrorCode.CONFLICT, 'You cannot disable your own key')
      }
      const disabled = req.body.disabled
      await store.users.put({ ...u, disabled })
      await audit(who, u.orgId, disabled ? 'user.disable' : 'user.enable', u.appKey)
      return await reply.code(204).send()
    }
  )

  app.post<{ Params: { orgID: string, appKey: string } }>(
    '/api/v1/users/:orgID/:appKey/rotate',
    {
      schema: {
        summary: 'New secret for an app key; the old one stops working at once (edgesync)',
        params: userParams
      }
    },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const u = await target(who, p.orgID, p.appKey)
      const secret = generateSecret()
      await store.users.put({ ...u, secretHash: hashGeneratedSecret(secret) })
      await audit(who, u.orgId, 'user.rotate', u.appKey)
      return await reply.code(200).send({ appKey: u.appKey, secret, orgID: u.orgId, role: u.role })
    }
  )

  app.delete<{ Params: { orgID: string, appKey: string } }>(
    '/api/v1/users/:orgID/:appKey',
    { schema: { summary: 'Remove an app key (edgesync)', params: userParams } },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const u = await target(who, p.orgID, p.appKey)
      if (u.appKey === who.appKey) {
        throw new SyncError(SyncErrorCode.CONFLICT, 'You cannot remove your own key')
      }
      await store.users.remove(u.appKey)
      await audit(who, u.orgId, 'user.remove', u.appKey)
      return await reply.code(204).send()
    }
  )

  app.delete<{ Params: { orgID: string, destType: string, destID: string } }>(
    '/api/v1/nodes/:orgID/:destType/:destID',
    {
      schema: {
        summary: 'Remove a node: its credentials (its connection is dropped) and its registration (edgesync)',
        params: destParams
      }
    },
    async (req, reply) => {
      const p = req.params
      const dest = { orgId: p.orgID, destinationType: p.destType, destinationId: p.destID }
      const who = requireOrg(req.identity, dest.orgId, true)
      const username = nodeUsername(dest)
      const hadUser = await store.users.remove(username)
      const hadNode = await store.nodes.remove(dest)
      await store.deliveries.removeByDestination(dest)
      if (!hadUser && !hadNode) throw new NotFoundError(`No node ${username}`)
      d.disconnect(username)
      await audit(who, dest.orgId, 'node.remove', username)
      return await reply.code(204).send()
    }
  )

  app.get<{ Params: { orgID: string } }>(
    '/api/v1/keys/:orgID',
    {
      schema: { summary: "The org's object-signing public keys, current first (edgesync)", params: orgParams }
    },
    async (req) => {
      const orgId = req.params.orgID
      requireOrg(req.identity, orgId, true)
      return await d.keys.list(orgId)
    }
  )

  app.post<{ Params: { orgID: string } }>(
    '/api/v1/keys/:orgID/rotate',
    {
      schema: {
        summary: 'New signing key; nodes are told to trust it in a message signed by the old key (edgesync)',
        params: orgParams
      }
    },
    async (req) => {
      const orgId = req.params.orgID
      const who = requireOrg(req.identity, orgId, true)
      const publicKey = await d.rotateKey(orgId)
      await audit(who, orgId, 'key.rotate', publicKey.split(':')[0] ?? '')
      return { publicKey }
    }
  )

  app.get<{ Params: { orgID: string }, Querystring: { since?: string; limit?: number } }>(
    '/api/v1/audit/:orgID',
    {
      schema: {
        summary: 'Audit log of admin changes, oldest first (edgesync)',
        params: orgParams,
        querystring: {
          type: 'object',
          properties: {
            since: { type: 'string', maxLength: 40 },
            limit: { type: 'integer', minimum: 1, maximum: 1000 }
          }
        }
      }
    },
    async (req) => {
      const orgId = req.params.orgID
      requireOrg(req.identity, orgId, true)
      const q = req.query
      return await store.audit.list({
        orgId,
        ...(q.since === undefined ? {} : { since: q.since }),
        limit: q.limit ?? 1000
      })
    }
  )
}
