export type { CloudTransport, BrokerAuth } from './types.js'
export { startEmbeddedBroker } from './embedded-broker.js'
export {
  connectMqtt,
  connectExternalBroker,
  mqttLink,
  type MqttConnection,
  type MqttLink
} from './mqtt-client.js'
export { acceptWebSockets, type AcceptedSocket } from './listeners.js'
