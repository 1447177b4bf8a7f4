/**
 * The CSS on an external Mosquitto connects without a protocol error: its publishing connection
 * subscribes to nothing, and must send no empty SUBSCRIBE (Mosquitto answers "empty_topic_list"
 * and the first wave logged "Subscribe after connect failed" on every start).
 */
import t from 'tap'
import { mosquittoAclText, mosquittoPasswordLine } from '../../src/security/index.js'
import { connectExternalBroker } from '../../src/transport/index.js'
import { requireBinary } from '../helpers/binaries.js'
import { captureLogger } from '../helpers/capture-log.js'
import { startMosquitto } from '../../harness/mosquitto.js'

const mosqBin = requireBinary(t, 'mosquitto', 'apt-get install mosquitto')

if (mosqBin !== undefined) {
  t.test('connect, subscribe, publish: no warning, no error', async (t) => {
    const mosq = await startMosquitto(mosqBin, mosquittoPasswordLine('css', 'css-secret'), mosquittoAclText('css', []))
    t.teardown(() => mosq.stop())
    const log = captureLogger()
    const transport = await connectExternalBroker({ url: mosq.url, username: 'css', password: 'css-secret', instanceId: 'probe', log })
    t.teardown(() => transport.close())
    const subscribed = new Promise<void>((resolve) => { transport.onSubscribed?.(() => { resolve() }) })
    transport.onMessage(async () => {})
    await subscribed
    await transport.publish('sync/v1/org1/edge/n1/down', Buffer.from('{}'))
    t.ok(transport.connected(), 'connected')
    t.same(log.lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.msg), [], 'nothing went wrong')
  })
}
