/** Every MQTT topic string is built and parsed here. Org is always part of the topic (tenant isolation by ACL). */
import { isValidName, type DestinationKey } from '../model.js'

export const TOPIC_ROOT = 'sync/v1'
/** Stands for "every destination id" or "every destination type"; cannot collide with a name. */
export const ALL = '_all'

/** CSS -> one ESS. */
export function downTopic (d: DestinationKey): string {
  return `${TOPIC_ROOT}/${d.orgId}/${d.destinationType}/${d.destinationId}/down`
}
/** CSS -> every ESS of a type (one publish, broker fan-out). */
export function typeDownTopic (orgId: string, destinationType: string): string {
  return `${TOPIC_ROOT}/${orgId}/${destinationType}/${ALL}/down`
}
/** CSS -> every ESS of an org. */
export function orgDownTopic (orgId: string): string {
  return `${TOPIC_ROOT}/${orgId}/${ALL}/${ALL}/down`
}
/** CSS -> every ESS of every org; carries nothing but "register again" (no data, no names). */
export const ALL_NODES_DOWN_TOPIC = `${TOPIC_ROOT}/${ALL}/${ALL}/${ALL}/down`

/** ESS -> CSS. */
export function upTopic (d: DestinationKey): string {
  return `${TOPIC_ROOT}/${d.orgId}/${d.destinationType}/${d.destinationId}/up`
}
/** What the CSS subscribes to (prefix with `$share/css/` on an external broker). */
export const UP_WILDCARD = `${TOPIC_ROOT}/+/+/+/up`

/** The topics an ESS may subscribe to: its own, its type's and its org's down topics. */
export function essSubscriptions (d: DestinationKey): string[] {
  return [
    downTopic(d),
    typeDownTopic(d.orgId, d.destinationType),
    orgDownTopic(d.orgId),
    ALL_NODES_DOWN_TOPIC
  ]
}

/** Parses an up topic into the node it claims to come from; undefined for anything else. */
export function parseUpTopic (topic: string): DestinationKey | undefined {
  const parts = topic.split('/')
  if (parts.length !== 6 || `${parts[0]}/${parts[1]}` !== TOPIC_ROOT || parts[5] !== 'up') return undefined
  const [, , orgId, destinationType, destinationId] = parts
  if (!isValidName(orgId) || !isValidName(destinationType) || !isValidName(destinationId)) return undefined
  return { orgId, destinationType, destinationId }
}

/** A node's MQTT username: `org/type/id` (as Open Horizon's edge-node app keys). */
export function nodeUsername (d: DestinationKey): string {
  return `${d.orgId}/${d.destinationType}/${d.destinationId}`
}

/**
 * The MQTT client id a node connects with: its username, optionally followed by `/suffix`. Names
 * cannot contain `/`, so no node can claim a client id of another (which would take over its
 * session and cut it off).
 */
export function nodeClientId (d: DestinationKey): string {
  return nodeUsername(d)
}

export function mayUseClientId (username: string, clientId: string): boolean {
  return clientId === username || clientId.startsWith(`${username}/`)
}

export function parseNodeUsername (u: string | undefined): DestinationKey | undefined {
  const parts = (u ?? '').split('/')
  if (parts.length !== 3) return undefined
  const [orgId, destinationType, destinationId] = parts
  if (!isValidName(orgId) || !isValidName(destinationType) || !isValidName(destinationId)) return undefined
  return { orgId, destinationType, destinationId }
}
