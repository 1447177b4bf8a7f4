export type { CloudTransport, BrokerAuth, EdgeLink, LinkHandlers } from './types.js'
import type { startEmbeddedBroker as Start } from './embedded-broker.js'

/**
 * The embedded broker (Aedes, and Redis for a cluster), loaded when a CSS starts one: an edge
 * never does, and need not carry it.
 */
export async function startEmbeddedBroker (...args: Parameters<typeof Start>): ReturnType<typeof Start> {
  const m = await import('./embedded-broker.js')
  return await m.startEmbeddedBroker(...args)
}
export {
  connectMqtt,
  connectExternalBroker,
  mqttLink,
  type MqttConnection
} from './mqtt-client.js'
export { acceptWebSockets, type AcceptedSocket } from './listeners.js'
export { HttpBridge, withHttpBridge } from './http-bridge.js'
export { httpLink } from './http-link.js'
export { autoLink } from './auto-link.js'
