/**
 * On the external shape (Mosquitto + FerretDB): health tells the truth (`/readyz` 503 and
 * `/api/v1/health` red while the store or the broker is down, back when they return), and on the
 * edges' Mosquitto listener a node cannot take over another node's client id.
 */
import t from 'tap'
import { mosquittoAclText, mosquittoPasswordLine } from '../../src/security/index.js'
import { requireBinary } from '../helpers/binaries.js'
import { enroll, startCss, waitFor } from '../helpers/cluster.js'
import { startFerretDb, type FerretDb } from '../../harness/ferretdb.js'
import { startMosquitto, type Mosquitto } from '../../harness/mosquitto.js'
import { connectRawNode } from '../helpers/raw-node.js'

const mosqBin = requireBinary(t, 'mosquitto', 'apt-get install mosquitto')
const ferretBin = requireBinary(t, 'ferretdb', 'run .ci/install-ferretdb.sh')

if (mosqBin !== undefined && ferretBin !== undefined) {
  let db: FerretDb = await startFerretDb(ferretBin)
  t.teardown(() => db.stop())
  const cssLine = mosquittoPasswordLine('css', 'css-secret')
  let mosq: Mosquitto = await startMosquitto(mosqBin, cssLine, mosquittoAclText('css', []))
  t.teardown(() => mosq.stop())
  const css = await startCss(t, `${t.testdir()}/css`, {
    BrokerMode: 'external', BrokerAddress: mosq.url, BrokerUsername: 'css', BrokerPassword: 'css-secret', StorageProvider: 'mongo', MongoUri: db.uri, MongoDbName: 'health'
  })
  const ready = async (): Promise<{ status: number, body: Record<string, string> }> => {
    const r = await fetch(`${css.restUrl}/readyz`)
    return { status: r.status, body: await r.json() as Record<string, string> }
  }
  const health = async (): Promise<{ db: string, mqtt: string }> => {
    const h = await (await fetch(`${css.restUrl}/api/v1/health`, { headers: { authorization: `Basic ${Buffer.from('root:root-secret').toString('base64')}` } })).json() as { dbHealth: { dbStatus: string }, mqttHealth: { mqttStatus: string } }
    return { db: h.dbHealth.dbStatus, mqtt: h.mqttHealth.mqttStatus }
  }
  const until = async (what: string, status: number): Promise<{ status: number, body: Record<string, string> }> =>
    await waitFor(what, async () => { const r = await ready(); return r.status === status ? r : undefined }, 20_000)

  t.test('readyz and health follow the store', async (t) => {
    t.same((await ready()).status, 200, 'ready while everything is up')
    t.same(await health(), { db: 'green', mqtt: 'green' })
    const { port, dir } = db
    await db.stop({ keepData: true })
    const down = await until('readyz 503 with the store down', 503)
    t.equal(down.body.store, 'down', 'readyz names the store')
    t.same(await health(), { db: 'red', mqtt: 'green' }, 'Open Horizon\'s health shows the database red')
    const read = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/any`, { headers: { authorization: `Basic ${Buffer.from('root:root-secret').toString('base64')}` } })
    t.same([read.status, (await read.json() as { code: string }).code], [503, 'SYNC_ERR_STORAGE'], 'a read while the database is down is a storage error (503), not a 500')
    db = await startFerretDb(ferretBin, { port, dir })
    await until('readyz 200 with the store back', 200)
    t.same(await health(), { db: 'green', mqtt: 'green' })
  })

  t.test('readyz and health follow the broker', async (t) => {
    const port = mosq.port
    await mosq.stop()
    const down = await until('readyz 503 with the broker down', 503)
    t.equal(down.body.broker, 'down', 'readyz names the broker')
    t.same(await health(), { db: 'green', mqtt: 'red' })
    mosq = await startMosquitto(mosqBin, cssLine, mosquittoAclText('css', []), { port })
    await until('readyz 200 with the broker back', 200)
  })

  t.test('on the edges\' listener, a node cannot take over another node\'s client id', async (t) => {
    const secrets = new Map<string, string>()
    for (const id of ['m1', 'm2']) secrets.set(id, await enroll(css, 'org1', 'edge', id))
    const keys = ['m1', 'm2'].map((id) => ({ orgId: 'org1', destinationType: 'edge', destinationId: id }))
    await mosq.setAuth([cssLine, ...keys.map((k) => mosquittoPasswordLine(`org1/edge/${k.destinationId}`, secrets.get(k.destinationId) ?? ''))].join('\n'), mosquittoAclText('css', keys))
    const m1 = await connectRawNode({ url: mosq.edgeUrl, org: 'org1', type: 'edge', id: 'm1', secret: secrets.get('m1') ?? '' })
    t.teardown(() => m1.close())
    let kicked = false
    m1.client.on('close', () => { kicked = true })
    const m2 = await connectRawNode({ url: mosq.edgeUrl, org: 'org1', type: 'edge', id: 'm2', secret: secrets.get('m2') ?? '', clientId: 'org1/edge/m1' })
    t.teardown(() => m2.close())
    // Barrier: a round trip on m2's connection, then on m1's.
    const granted = await m2.client.subscribeAsync('sync/v1/org1/edge/m2/down', { qos: 1 })
    t.same(granted.map((g) => g.qos), [1], 'm2 connected, as itself')
    const mine = await m1.client.subscribeAsync('sync/v1/org1/edge/m1/down', { qos: 1 })
    t.same(mine.map((g) => g.qos), [1], 'm1 still subscribes to its own topic')
    t.notOk(kicked, 'm1 was not disconnected: the broker replaced m2\'s claimed client id by its username')
  })
}
