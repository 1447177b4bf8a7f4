/** Which nodes an object is addressed to (DESIGN 4: one node, a list, a type, the org, a selector). */
import type { NodeRecord, ObjectMetadata } from '../common/model.js'
import { ALL, downTopic, orgDownTopic, typeDownTopic } from '../common/protocol/topics.js'

export function isAddressedTo (
  meta: ObjectMetadata,
  orgId: string,
  node: Pick<NodeRecord, 'orgId' | 'destinationType' | 'destinationId' | 'properties'>
): boolean {
  if (node.orgId !== orgId) return false
  // Types starting with "_" (e.g. EMS layers) live only in the CSS: the API cannot create them.
  if (meta.objectType.startsWith('_')) return false
  // Objects that came from an edge go to the cloud only, never on to other edges.
  if (meta.originType !== undefined && meta.originType !== 'cloud') return false
  if (meta.destinationsList !== undefined && meta.destinationsList.length > 0) {
    return meta.destinationsList.includes(`${node.destinationType}:${node.destinationId}`)
  }
  // A policy object goes where its policy engine puts it (the destinations list), nowhere else.
  if (hasPolicy(meta)) return false
  if (
    meta.destinationType !== undefined &&
    meta.destinationType !== '' &&
    meta.destinationType !== node.destinationType
  ) {
    return false
  }
  if (
    meta.destinationID !== undefined &&
    meta.destinationID !== '' &&
    meta.destinationID !== node.destinationId
  ) {
    return false
  }
  for (const [k, v] of Object.entries(meta.destinationSelector ?? {})) {
    if (node.properties[k] !== v) return false
  }
  return true
}

/** The single broadcast topic that reaches exactly the addressed nodes, when there is one. */
export function broadcastTopic (meta: ObjectMetadata, orgId: string): string | undefined {
  const hasList = meta.destinationsList !== undefined && meta.destinationsList.length > 0
  const hasSelector = Object.keys(meta.destinationSelector ?? {}).length > 0
  const hasId = meta.destinationID !== undefined && meta.destinationID !== ''
  if (hasList || hasSelector || hasPolicy(meta)) return undefined
  if (hasId) {
    return downTopic({
      orgId,
      destinationType: meta.destinationType ?? ALL,
      destinationId: meta.destinationID ?? ''
    })
  }
  if (meta.destinationType !== undefined && meta.destinationType !== '') {
    return typeDownTopic(orgId, meta.destinationType)
  }
  return orgDownTopic(orgId)
}

/** Open Horizon's `destinationPolicy`: set (an object), the object is placed by a policy engine. */
export function hasPolicy (meta: Pick<ObjectMetadata, 'destinationPolicy'>): boolean {
  return typeof meta.destinationPolicy === 'object' && meta.destinationPolicy !== null
}
