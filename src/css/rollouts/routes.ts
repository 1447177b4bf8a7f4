/**
 * REST for rollouts (`/api/v1/rollouts/{org}`: create with preview, list, status, pause, resume,
 * abort, approve) and maintenance windows (`/api/v1/windows/{org}`). Org admins; every action is
 * audited (engine.ts).
 */
import type { FastifyInstance } from 'fastify'
import { nameSchema } from '../../api/server.js'
import { NotFoundError } from '../../common/errors.js'
import { requireOrg } from '../../security/acl.js'
import type { EdgeRecord, Rollout, RolloutPolicy } from './model.js'
import { WINDOW, type CreateRollout, type RolloutEngine } from './engine.js'
import { checkTimeZone, nextOpen, openUntil, parseCron, type MaintenanceWindow } from '../../common/windows.js'

const orgParams = { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] } as const
const idParams = { type: 'object', properties: { orgID: nameSchema, id: nameSchema }, required: ['orgID', 'id'] } as const
const fraction = { type: 'number', minimum: 0, maximum: 1 } as const

/** What became of the change on an edge, in words an operator reads. */
export function outcomeOf (e: EdgeRecord): string {
  switch (e.state) {
    case 'consumed': return 'applied'
    case 'sent': return 'applying'
    case 'pending': return 'waiting for its wave'
    case 'waiting-window': return 'waiting for its maintenance window'
    case 'timedOut': return 'timed out'
    case 'reverted': return 'reverted'
    case 'revert-failed': return 'revert failed'
    case 'skipped': return 'skipped'
    case 'error': {
      const m = e.message ?? ''
      return m.startsWith('rolled back') ? 'rolled back' : m.startsWith('rejected') ? 'refused by validation' : 'failed'
    }
  }
}

/** A rollout with its per-wave progress and each edge's outcome. */
export function report (r: Rollout): Record<string, unknown> {
  const waves = r.waves.map((edges, i) => {
    const recs = edges.map((e) => r.edges[e] as EdgeRecord)
    const count = (...states: string[]): number => recs.filter((x) => states.includes(x.state)).length
    return {
      wave: i + 1,
      size: edges.length,
      consumed: count('consumed'),
      applying: count('sent'),
      error: count('error'),
      timedOut: count('timedOut'),
      waiting: count('pending', 'waiting-window'),
      reverted: count('reverted', 'revert-failed'),
      state: i < r.wave ? 'done' : i === r.wave ? r.status : 'not started'
    }
  })
  return {
    id: r.id,
    orgID: r.orgId,
    kind: r.kind,
    status: r.status,
    ...(r.reason === undefined ? {} : { reason: r.reason }),
    wave: r.wave + 1,
    waves,
    policy: r.policy,
    createdBy: r.createdBy,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    edges: Object.entries(r.edges).map(([edge, e]) => ({ edge, ...e, wave: e.wave + 1, outcome: outcomeOf(e) })),
    skipped: r.skipped,
    history: r.history,
    change: r.change
  }
}

interface CreateBody {
  id?: string
  kind: string
  change: unknown
  waves?: Array<{ percent: number } | { count: number }>
  exponential?: { start: number, factor: number }
  successThreshold?: number
  errorThreshold?: number
  onError?: RolloutPolicy['onError']
  approval?: boolean
  deadlineSeconds?: number
  minWaveSeconds?: number
  windows?: RolloutPolicy['windows']
}

export function registerRolloutRoutes (app: FastifyInstance, engine: RolloutEngine): void {
  app.post<{ Params: { orgID: string }, Querystring: { preview?: boolean }, Body: CreateBody }>(
    '/api/v1/rollouts/:orgID',
    {
      schema: {
        summary: 'Start a rollout of an EMS change or an object in waves (preview=true: the waves with per-edge diffs; nothing sent)',
        params: orgParams,
        querystring: { type: 'object', properties: { preview: { type: 'boolean' } } },
        body: {
          type: 'object',
          required: ['kind', 'change'],
          additionalProperties: false,
          properties: {
            id: nameSchema,
            kind: { type: 'string', maxLength: 64 },
            change: { type: 'object' },
            waves: {
              type: 'array',
              minItems: 1,
              maxItems: 100,
              items: {
                oneOf: [
                  { type: 'object', required: ['percent'], additionalProperties: false, properties: { percent: { type: 'number', minimum: 0.01, maximum: 100 } } },
                  { type: 'object', required: ['count'], additionalProperties: false, properties: { count: { type: 'integer', minimum: 1 } } }
                ]
              }
            },
            exponential: {
              type: 'object',
              required: ['start', 'factor'],
              additionalProperties: false,
              properties: { start: { type: 'integer', minimum: 1 }, factor: { type: 'number', minimum: 1, maximum: 100 } }
            },
            successThreshold: fraction,
            errorThreshold: fraction,
            onError: { enum: ['pause', 'abort'] },
            approval: { type: 'boolean' },
            deadlineSeconds: { type: 'integer', minimum: 1, maximum: 30 * 86400 },
            minWaveSeconds: { type: 'integer', minimum: 0, maximum: 86400 },
            windows: { enum: ['hold', 'wait', 'ignore'] }
          }
        }
      }
    },
    async (req, reply) => {
      const orgId = req.params.orgID
      const who = requireOrg(req.identity, orgId, true)
      const b = req.body
      const create: CreateRollout = {
        kind: b.kind,
        change: b.change,
        waves: b.exponential !== undefined ? { exponential: b.exponential } : (b.waves ?? [{ percent: 100 }]),
        policy: {
          successThreshold: b.successThreshold ?? 1,
          errorThreshold: b.errorThreshold ?? 0,
          onError: b.onError ?? 'pause',
          approval: b.approval ?? false,
          deadlineSeconds: b.deadlineSeconds ?? 3600,
          // Exponential waves are a rate: `start` edges in the first minute, then start * factor...
          minWaveSeconds: b.minWaveSeconds ?? (b.exponential !== undefined ? 60 : 0),
          windows: b.windows ?? 'ignore'
        },
        ...(b.id === undefined ? {} : { id: b.id })
      }
      if (req.query.preview === true) return await engine.preview(orgId, create)
      return await reply.code(201).send(report(await engine.create(orgId, create, who.appKey)))
    }
  )
  app.get<{ Params: { orgID: string } }>(
    '/api/v1/rollouts/:orgID',
    { schema: { summary: 'Rollouts of an org with their progress', params: orgParams } },
    async (req) => {
      requireOrg(req.identity, req.params.orgID)
      return (await engine.list(req.params.orgID)).map((r) => {
        const { edges: _e, history: _h, change: _c, ...rest } = report(r)
        return rest
      })
    }
  )
  app.get<{ Params: { orgID: string, id: string } }>(
    '/api/v1/rollouts/:orgID/:id',
    { schema: { summary: 'One rollout: waves, each edge with its outcome, history', params: idParams } },
    async (req) => {
      requireOrg(req.identity, req.params.orgID)
      return report(await engine.get(req.params.orgID, req.params.id))
    }
  )
  app.post<{ Params: { orgID: string, id: string, action: 'pause' | 'resume' | 'abort' | 'approve' } }>(
    '/api/v1/rollouts/:orgID/:id/:action',
    {
      schema: {
        summary: 'Pause, resume (also past an error pause), abort (reverts the edges changed) or approve the next wave',
        params: {
          type: 'object',
          required: ['orgID', 'id', 'action'],
          properties: { orgID: nameSchema, id: nameSchema, action: { enum: ['pause', 'resume', 'abort', 'approve'] } }
        }
      }
    },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      await engine.command(p.orgID, p.id, p.action, who.appKey)
      return await reply.code(202).send({ id: p.id, action: p.action, accepted: true })
    }
  )

  const settings = engine.settings
  app.put<{ Params: { orgID: string, name: string }, Body: Omit<MaintenanceWindow, 'name'> }>(
    '/api/v1/windows/:orgID/:name',
    {
      schema: {
        summary: 'Set a maintenance window for a site or selector (cron with optional seconds, duration, time zone)',
        params: { type: 'object', properties: { orgID: nameSchema, name: nameSchema }, required: ['orgID', 'name'] },
        body: {
          type: 'object',
          required: ['cron', 'durationSeconds'],
          additionalProperties: false,
          properties: {
            cron: { type: 'string', maxLength: 128 },
            durationSeconds: { type: 'integer', minimum: 1, maximum: 604800 },
            timeZone: { type: 'string', maxLength: 64, default: 'UTC' },
            site: nameSchema,
            selector: { type: 'object', additionalProperties: { type: 'string', maxLength: 256 } }
          }
        }
      }
    },
    async (req) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      parseCron(req.body.cron)
      checkTimeZone(req.body.timeZone)
      const w: MaintenanceWindow = { name: p.name, ...req.body }
      await settings.set(`${WINDOW}${p.orgID}/${p.name}`, JSON.stringify(w))
      await engine.audit(p.orgID, who.appKey, 'window.set', p.name, { ...req.body })
      return windowView(w)
    }
  )
  app.get<{ Params: { orgID: string } }>(
    '/api/v1/windows/:orgID',
    { schema: { summary: 'Maintenance windows of an org, whether each is open now and when it opens next', params: orgParams } },
    async (req) => {
      requireOrg(req.identity, req.params.orgID)
      return (await settings.list(`${WINDOW}${req.params.orgID}/`)).map(([, v]) => windowView(JSON.parse(v) as MaintenanceWindow))
    }
  )
  app.delete<{ Params: { orgID: string, name: string } }>(
    '/api/v1/windows/:orgID/:name',
    {
      schema: {
        summary: 'Remove a maintenance window',
        params: { type: 'object', properties: { orgID: nameSchema, name: nameSchema }, required: ['orgID', 'name'] }
      }
    },
    async (req, reply) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const name = `${WINDOW}${p.orgID}/${p.name}`
      if (await settings.get(name) === undefined) throw new NotFoundError(`No window ${p.name} in org ${p.orgID}`)
      await settings.remove(name)
      await engine.audit(p.orgID, who.appKey, 'window.remove', p.name)
      return await reply.code(204).send()
    }
  )
}

export function windowView (w: MaintenanceWindow, now = Date.now()): Record<string, unknown> {
  const until = openUntil(w, now)
  const next = nextOpen(w, now)
  return {
    ...w,
    open: until !== undefined,
    ...(until === undefined ? {} : { openUntil: new Date(until).toISOString() }),
    ...(next === undefined ? {} : { nextOpen: new Date(next).toISOString() })
  }
}
