/**
 * EMS freshness (the requirement's "99.9% of edges current within 1 h"): `behindSince` is when an
 * edge first fell behind (the publish time of the first version after the one it runs), not when
 * the newest version was published; an edge that is away shows `offline`, not `delivering`.
 */
import { mock } from 'node:test'
import t from 'tap'
import { EmsService } from '../../../src/ems/cloud/config-service.js'
import { createMemoryStore } from '../../../src/storage/index.js'
import { captureLogger } from '../../helpers/capture-log.js'
import { sampleEmsConfig } from '../../helpers/ems.js'

const T0 = Date.parse('2026-03-01T00:00:00Z')
const MIN = 60_000
t.beforeEach(() => { mock.timers.enable({ apis: ['Date'], now: T0 }) })
t.afterEach(() => { mock.timers.reset() })

t.test('behindSince counts from the first missed version; offline edges say so', async (t) => {
  const store = createMemoryStore({ historyRetention: 100 })
  const ems = new EmsService(store, {
    put: async (key, meta, data) => {
      const blob = await store.blobs.write([data])
      return await store.objects.put(key, () => ({
        meta: { objectID: key.objectId, objectType: key.objectType, destinationOrgID: key.orgId, dataID: 0, objectSize: blob.size, ...meta },
        status: 'ready',
        dataRef: blob.ref
      }))
    }
  }, { edgeType: 'edge', offlineAfterMs: 2 * MIN }, captureLogger())
  const node = (id: string, activeVersion: number, heardMinAgo: number): Parameters<typeof store.nodes.upsert>[0] => ({
    orgId: 'o',
    destinationType: 'edge',
    destinationId: id,
    properties: {},
    protocol: 'mqtt',
    online: true,
    registeredAt: new Date(T0).toISOString(),
    lastHeartbeat: new Date(Date.now() - heardMinAgo * MIN).toISOString(),
    status: { ems: { activeVersion } }
  })
  await store.nodes.upsert(node('e1', 0, 0))
  await store.nodes.upsert(node('e2', 0, 0))
  const cfg = sampleEmsConfig() as Parameters<typeof ems.setLayer>[2]
  await ems.setLayer('o', { kind: 'org', id: '' }, cfg, 'op') // v1 at T0
  await store.nodes.upsert(node('e1', 1, 0))
  await store.nodes.upsert(node('e2', 1, 0))
  mock.timers.tick(10 * MIN)
  const v2 = structuredClone(cfg) as { core_cycle: { period_ms: number } }
  v2.core_cycle.period_ms = 500
  await ems.setLayer('o', { kind: 'org', id: '' }, v2, 'op') // v2 at T0+10 min
  mock.timers.tick(10 * MIN)
  v2.core_cycle.period_ms = 400
  await ems.setLayer('o', { kind: 'org', id: '' }, v2, 'op') // v3 at T0+20 min
  await store.nodes.upsert(node('e2', 3, 0)) // e2 caught up; e1 still runs v1 and went quiet
  await store.deliveries.upsertMany([{ orgId: 'o', objectType: 'ems-config', objectId: 'e2', destinationType: 'edge', destinationId: 'e2', instanceId: 3, status: 'consumed' }])
  await store.nodes.upsert(node('e1', 1, 5))
  const st = await ems.status('o')
  const e1 = st.find((s) => s.edge === 'e1')
  const e2 = st.find((s) => s.edge === 'e2')
  t.equal(e1?.latest, 3)
  t.equal(e1?.behindSince, new Date(T0 + 10 * MIN).toISOString(), 'behind since v2 was published, not since v3')
  t.equal(e1?.status, 'offline', 'not heard from for 5 min (limit 2): offline, not delivering')
  t.equal(e1?.online, false)
  t.equal(e2?.behindSince, undefined, 'an edge that runs the latest is not behind')
  t.equal(e2?.status, 'consumed')
})
