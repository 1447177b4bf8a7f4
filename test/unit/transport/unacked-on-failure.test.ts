/**
 * Nothing is acknowledged before it is durable: when the CSS's handler fails in the store, the
 * embedded broker withholds the PUBACK by dropping the sender's connection; the edge (a real
 * mqtt.js client with a persistent session) reconnects and sends the same message again, which
 * is acknowledged once the handler succeeds. A handler failure is made by the test (a store that
 * refuses one write cannot be produced on demand, see test/faults/full-disk.test.ts).
 */
import mqtt from 'mqtt'
import t from 'tap'
import { StorageError } from '../../../src/common/errors.js'
import { startEmbeddedBroker } from '../../../src/transport/index.js'
import { captureLogger } from '../../helpers/capture-log.js'

t.test('a message whose handling failed is sent again and acknowledged only once handled', async (t) => {
  const log = captureLogger()
  t.teardown(() => { if (process.env.DEBUG_LOG !== undefined) console.log(JSON.stringify(log.lines)) })
  const broker = await startEmbeddedBroker({
    host: '127.0.0.1',
    port: 0,
    handlesUpMessages: true,
    log,
    auth: { authenticate: async (l) => ({ ok: true, username: l.username ?? '' }), mayPublish: () => true, maySubscribe: () => true }
  })
  t.teardown(() => broker.close())
  const seen: string[] = []
  let failures = 1
  broker.onMessage(async (_topic, payload) => {
    seen.push(payload.toString())
    if (failures-- > 0) throw new StorageError('disk full') // the first attempt is not durable
  })
  const client = await mqtt.connectAsync(broker.urls[0] ?? '', { username: 'o/edge/e1', clientId: 'o/edge/e1', clean: false, protocolVersion: 4, reconnectPeriod: 100 })
  t.teardown(() => client.endAsync(true))
  let reconnects = 0
  client.on('reconnect', () => { reconnects++ })
  // Resolves only on PUBACK: it must not resolve for the failed attempt.
  await client.publishAsync('sync/v1/o/edge/e1/up', 'ack-1', { qos: 1 })
  t.same(seen, ['ack-1', 'ack-1'], 'handled twice: the failed attempt, then the resend')
  t.ok(reconnects >= 1, 'the client was disconnected instead of acknowledged, and reconnected')
})
