export type { CloudTransport, BrokerAuth } from './types.js'
export { startEmbeddedBroker } from './embedded-broker.js'
export { connectMqtt, connectExternalBroker, type MqttConnection } from './mqtt-client.js'
export { acceptWebSockets, type AcceptedSocket } from './listeners.js'
