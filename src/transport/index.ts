export type { CloudTransport, BrokerAuth, EdgeLink, LinkHandlers } from './types.js'
export { startEmbeddedBroker } from './embedded-broker.js'
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
