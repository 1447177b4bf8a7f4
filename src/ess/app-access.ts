/** What every route of the ESS local API shares: its parameter schemas and who may call it. */
import type { FastifyRequest } from 'fastify'
import { forbidden, nameSchema } from '../api/server.js'
import type { ObjectKey } from '../common/model.js'

export const typeParams = {
  type: 'object',
  properties: { objectType: nameSchema },
  required: ['objectType']
} as const
export const objParams = {
  type: 'object',
  properties: { objectType: nameSchema, objectID: nameSchema },
  required: ['objectType', 'objectID']
} as const

/** The object a local-API request names, in this edge's org; edge node credentials are refused. */
export function appObjectKey (req: FastifyRequest, orgId: string): ObjectKey {
  if (req.identity?.role === 'node') throw forbidden('Edge node credentials cannot use the application API')
  const p = req.params as Record<string, string>
  return { orgId, objectType: p.objectType ?? '', objectId: p.objectID ?? '' }
}
