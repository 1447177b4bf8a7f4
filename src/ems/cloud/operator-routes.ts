/** CSS REST routes of the EMS configuration service (`/api/v1/ems/{org}/...`). */
import type { FastifyInstance } from 'fastify'
import { nameSchema } from '../../api/server.js'
import { requireOrg } from '../../security/acl.js'
import { NotFoundError } from '../../common/errors.js'
import { mergeLayers, type Json } from './layers.js'
import { parseLayer, type EmsService, type LayerRef } from './config-service.js'

const orgParams = { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] } as const
const layerParams = {
  type: 'object',
  properties: { orgID: nameSchema, layer: { type: 'string', maxLength: 140 } },
  required: ['orgID', 'layer']
} as const
const edgeParams = {
  type: 'object',
  properties: { orgID: nameSchema, edgeID: nameSchema },
  required: ['orgID', 'edgeID']
} as const
/** An edge and one version of its published config. */
const versionParams = {
  type: 'object',
  properties: { ...edgeParams.properties, version: { type: 'integer', minimum: 1 } },
  required: [...edgeParams.required, 'version']
} as const
type Obj = Record<string, Json>

export function registerEmsRoutes (app: FastifyInstance, ems: EmsService): void {
  app.get<{ Params: { orgID: string; layer: string } }>(
    '/api/v1/ems/:orgID/layers/:layer',
    { schema: { summary: 'An EMS configuration layer (org, site:<id>, edge:<id>)', params: layerParams } },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      const l = await ems.getLayer(p.orgID, parseLayer(p.layer))
      if (l === undefined) throw new NotFoundError(`No layer ${p.layer}`)
      return l.doc
    }
  )
  const previewQuery = {
    type: 'object',
    properties: {
      preview: { type: 'boolean', description: 'show what the change does to each edge; write nothing' }
    }
  } as const
  /** Sets (or previews) a layer; the answer says why when no edge is affected. */
  const change = async (
    orgId: string,
    ref: LayerRef,
    doc: Obj,
    actor: string,
    preview: boolean
  ): Promise<unknown> => {
    const outcomes = preview ? await ems.preview(orgId, ref, doc) : await ems.setLayer(orgId, ref, doc, actor)
    const note =
      outcomes.length === 0
        ? 'No EMS edge is affected yet: an edge appears once its ESS registered (or an HTTP edge sent its ' +
          'first heartbeat), and then gets its effective config'
        : undefined
    return { [preview ? 'preview' : 'published']: outcomes, ...(note === undefined ? {} : { note }) }
  }
  app.put<{ Params: { orgID: string; layer: string }; Querystring: { preview?: boolean } }>(
    '/api/v1/ems/:orgID/layers/:layer',
    {
      schema: {
        summary: 'Replace a layer; affected edges get a new validated effective config (or nothing happens)',
        params: layerParams,
        querystring: previewQuery,
        body: { type: 'object' }
      }
    },
    async (req) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      return await change(
        p.orgID,
        parseLayer(p.layer),
        req.body as Obj,
        who.appKey,
        req.query.preview === true
      )
    }
  )
  app.patch<{ Params: { orgID: string; layer: string }; Querystring: { preview?: boolean } }>(
    '/api/v1/ems/:orgID/layers/:layer',
    {
      schema: {
        summary: 'Merge a partial document into a layer (lists by item id)',
        params: layerParams,
        querystring: previewQuery,
        body: { type: 'object' }
      }
    },
    async (req) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const ref = parseLayer(p.layer)
      const cur = (await ems.getLayer(p.orgID, ref))?.doc ?? {}
      const merged = mergeLayers([
        { name: 'current', doc: cur },
        { name: 'patch', doc: req.body as Obj }
      ]).config
      return await change(p.orgID, ref, merged, who.appKey, req.query.preview === true)
    }
  )
  app.get<{ Params: { orgID: string; layer: string } }>(
    '/api/v1/ems/:orgID/layers/:layer/history',
    { schema: { summary: 'Every retained version of a layer, newest first', params: layerParams } },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      return await ems.layerHistory(p.orgID, parseLayer(p.layer))
    }
  )
  app.get<{ Params: { orgID: string; edgeID: string } }>(
    '/api/v1/ems/:orgID/edges/:edgeID/effective',
    {
      schema: {
        summary: "An edge's effective config, with the layer that set each value",
        params: edgeParams
      }
    },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      return await ems.effective(p.orgID, p.edgeID)
    }
  )
  app.get<{ Params: { orgID: string; edgeID: string } }>(
    '/api/v1/ems/:orgID/edges/:edgeID/history',
    { schema: { summary: "Versions of an edge's published config, newest first", params: edgeParams } },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      return await ems.history(p.orgID, p.edgeID)
    }
  )
  app.get<{ Params: { orgID: string; edgeID: string; version: number } }>(
    '/api/v1/ems/:orgID/edges/:edgeID/versions/:version',
    {
      schema: {
        summary: "One retained version of an edge's published config (for diffs and before a rollback)",
        params: versionParams
      }
    },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      const config = await ems.at(p.orgID, p.edgeID, p.version)
      if (config === undefined) { throw new NotFoundError(`Version ${p.version} of ${p.edgeID}'s config is not retained`) }
      return config
    }
  )
  app.get<{ Params: { orgID: string; edgeID: string; version: number }; Querystring: { from: number } }>(
    '/api/v1/ems/:orgID/edges/:edgeID/versions/:version/diff',
    {
      schema: {
        summary: "What changed in an edge's config from version `from` (0: nothing) to this one, leaf by leaf",
        params: versionParams,
        querystring: {
          type: 'object',
          required: ['from'],
          properties: { from: { type: 'integer', minimum: 0 } }
        }
      }
    },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      return await ems.versionDiff(p.orgID, p.edgeID, req.query.from, p.version)
    }
  )
  app.post<{ Params: { orgID: string; edgeID: string }; Body: { version: number } }>(
    '/api/v1/ems/:orgID/edges/:edgeID/rollback',
    {
      schema: {
        summary: 'Publish an earlier version again, as a new version, and pin the edge there until released',
        params: edgeParams,
        body: {
          type: 'object',
          required: ['version'],
          additionalProperties: false,
          properties: { version: { type: 'integer', minimum: 1 } }
        }
      }
    },
    async (req) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      return {
        version: await ems.rollback(p.orgID, p.edgeID, req.body.version, who.appKey)
      }
    }
  )
  app.post<{ Params: { orgID: string; edgeID: string } }>(
    '/api/v1/ems/:orgID/edges/:edgeID/release',
    {
      schema: {
        summary: 'End a rollback pin: the edge follows its layers again (its effective config is published)',
        params: edgeParams
      }
    },
    async (req) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      return await ems.release(p.orgID, p.edgeID, who.appKey)
    }
  )
  app.post<{
    Params: { orgID: string }
    Body: {
      path: string
      value?: Json
      site?: string
      selector?: Record<string, string>
      apply?: boolean
    }
  }>(
    '/api/v1/ems/:orgID/bulk',
    {
      schema: {
        summary:
          'Set one value for every edge of a site or of a selector; preview (apply=false) shows the per-edge diff',
        params: orgParams,
        body: {
          type: 'object',
          required: ['path'],
          additionalProperties: false,
          properties: {
            path: { type: 'string', maxLength: 512 },
            value: {},
            site: nameSchema,
            selector: { type: 'object', additionalProperties: { type: 'string' } },
            apply: { type: 'boolean' }
          }
        }
      }
    },
    async (req) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      const b = req.body
      return {
        edges: await ems.bulk(
          p.orgID,
          {
            path: b.path,
            value: b.value ?? null,
            ...(b.site === undefined ? {} : { site: b.site }),
            ...(b.selector === undefined ? {} : { selector: b.selector }),
            apply: b.apply === true
          },
          who.appKey
        )
      }
    }
  )
  app.get<{ Params: { orgID: string }; Querystring: { since?: string } }>(
    '/api/v1/ems/:orgID/changes',
    {
      schema: {
        summary: "EMS audit trail: every change (who, when, diff, edges, versions) and each edge's outcome",
        params: orgParams,
        querystring: { type: 'object', properties: { since: { type: 'string', maxLength: 40 } } }
      }
    },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      return await ems.changes(p.orgID, req.query.since)
    }
  )
  app.get<{ Params: { orgID: string } }>(
    '/api/v1/ems/:orgID/drift',
    {
      schema: {
        summary:
          'Edges running something other than what they should (changed on the device, an old backup restored)',
        params: orgParams
      }
    },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      return (await ems.status(p.orgID))
        .filter((s) => s.drift !== undefined)
        .map((s) => ({
          edge: s.edge,
          site: s.site,
          latest: s.latest,
          running: (s.runtime as { activeVersion?: number } | undefined)?.activeVersion,
          drift: s.drift
        }))
    }
  )
  app.post<{ Params: { orgID: string; edgeID: string } }>(
    '/api/v1/ems/:orgID/edges/:edgeID/drift/correct',
    {
      schema: {
        summary: 'Resend an edge its newest config (as a new version) to end a drift',
        params: edgeParams
      }
    },
    async (req) => {
      const p = req.params
      const who = requireOrg(req.identity, p.orgID, true)
      return { version: await ems.correctDrift(p.orgID, p.edgeID, who.appKey) }
    }
  )
  app.get<{ Params: { orgID: string } }>(
    '/api/v1/ems/:orgID/status',
    {
      schema: {
        summary: 'Per edge: latest config version, delivery state, since when it is behind',
        params: orgParams
      }
    },
    async (req) => {
      const p = req.params
      requireOrg(req.identity, p.orgID)
      return await ems.status(p.orgID)
    }
  )
}
