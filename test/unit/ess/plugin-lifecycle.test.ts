/**
 * The plugin host's lifecycle: a paused plugin keeps running but new objects wait (the newest of
 * each), resume hands them over; stop runs the plugin's stop and parks objects until start; the
 * operator's choice survives a restart of the host; impossible transitions and unknown plugins
 * are clear errors with stable codes.
 */
import t from 'tap'
import { createMemoryStore, type Store } from '../../../src/storage/index.js'
import { PluginHost, type EdgePlugin, type PluginContext, type PluginObject } from '../../../src/ess/plugins.js'
import { captureLogger } from '../../helpers/capture-log.js'
import type { ObjectMetadata } from '../../../src/common/model.js'

class Recorder implements EdgePlugin {
  readonly name = 'rec'
  readonly objectTypes = ['cfg']
  readonly seen: string[] = []
  starts = 0
  stops = 0
  async start (_ctx: PluginContext): Promise<void> { this.starts++ }
  async handle (o: PluginObject): Promise<{ state: 'consumed' }> {
    this.seen.push(`${o.meta.objectID}#${o.meta.instanceID}`)
    return { state: 'consumed' }
  }

  status (): Record<string, unknown> { return { seen: this.seen.length } }
  async stop (): Promise<void> { this.stops++ }
}

async function put (store: Store, id: string): Promise<ObjectMetadata> {
  const key = { orgId: 'o', objectType: 'cfg', objectId: id }
  const o = await store.objects.put(key, () => ({
    meta: { objectID: id, objectType: 'cfg', destinationOrgID: 'o', dataID: 0, objectSize: 0 },
    status: 'completelyReceived'
  }))
  return o.meta
}

const settle = async (): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, 50)) }

t.test('pause holds the newest of each object; resume hands them over; state survives a restart', async (t) => {
  const store = createMemoryStore({ historyRetention: 5 })
  const dir = t.testdir()
  const reports: string[] = []
  const make = (p: Recorder): PluginHost => new PluginHost([p], {
    store, orgId: 'o', dir, options: '', log: captureLogger(), report: (k, i) => { reports.push(`${k.objectId}#${i}`) }
  })
  const p = new Recorder()
  const host = make(p)
  await host.start()
  t.equal(await host.control('rec', 'pause'), 'paused')
  t.equal(await host.control('rec', 'pause'), 'paused', 'pausing again is not an error')
  host.offer(await put(store, 'a'))
  host.offer(await put(store, 'a'))
  host.offer(await put(store, 'b'))
  await settle()
  t.same(p.seen, [], 'nothing handled while paused')
  t.equal(host.status().rec?.waiting, 2, 'two objects wait (the newest of a, and b)')
  t.equal(host.status().rec?.state, 'paused')
  // A restart keeps it paused; the objects received meanwhile are handed over at resume.
  await host.stop()
  const p2 = new Recorder()
  const again = make(p2)
  await again.start()
  t.equal(again.status().rec?.state, 'paused', 'still paused after the restart')
  await settle()
  t.same(p2.seen, [])
  t.equal(await again.control('rec', 'resume'), 'running')
  await settle()
  t.same(p2.seen.sort(), ['a#2', 'b#3'], 'only the newest instance of a, then b')
  t.same(reports.sort(), ['a#2', 'b#3'])
  await again.stop()
})

t.test('stop and start; clear errors', async (t) => {
  const store = createMemoryStore({ historyRetention: 5 })
  const p = new Recorder()
  const host = new PluginHost([p], { store, orgId: 'o', dir: t.testdir(), options: '', log: captureLogger(), report: () => {} })
  await host.start()
  t.equal(await host.control('rec', 'stop'), 'stopped')
  t.equal(p.stops, 1)
  host.offer(await put(store, 'c'))
  await settle()
  t.same(p.seen, [], 'parked while stopped')
  await t.rejects(host.control('rec', 'pause'), { code: 'SYNC_ERR_CONFLICT' }, 'a stopped plugin cannot be paused')
  await t.rejects(host.control('nope', 'start'), { code: 'SYNC_ERR_NOT_FOUND' })
  t.equal(await host.control('rec', 'start'), 'running')
  t.equal(p.starts, 2)
  await settle()
  t.same(p.seen, ['c#1'], 'handed over at start')
  await host.stop()
})
