import t from 'tap'
import { diff, mergeLayers, setPath } from '../../../src/ems/cloud/layers.js'
import { sampleEmsConfig } from '../../helpers/ems.js'

t.test('ems layers - merge by key and by list item id, with provenance', async (t) => {
  const org = sampleEmsConfig() as any
  const site = { scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: 45000 } }] } }
  const edge = { core_cycle: { period_ms: 500 }, alarms: [{ id: 'alarm_soc_low', _remove: true }] }
  const e = mergeLayers([{ name: 'org', doc: org }, { name: 'site:A', doc: site }, { name: 'edge:n1', doc: edge }])
  const c = e.config as any
  t.equal(c.scheduler.controllers[1].parameters.threshold_watts, 45000)
  t.equal(c.scheduler.controllers[1].parameters.recharge_enabled, true, 'siblings inherited')
  t.equal(c.core_cycle.period_ms, 500)
  t.same(c.alarms, [], 'an edge removed an inherited alarm')
  t.equal(e.provenance['/scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts'], 'site:A')
  t.equal(e.provenance['/scheduler/controllers/ctrlPeakShaving0/parameters/recharge_enabled'], 'org')
  t.equal(e.provenance['/core_cycle/period_ms'], 'edge:n1')
  t.notOk(Object.keys(e.provenance).some((p) => p.startsWith('/alarms/alarm_soc_low')))
  t.equal(org.scheduler.controllers[1].parameters.threshold_watts, 50000, 'layers are not modified')
})

t.test('ems layers - diff and setPath use the same keyed paths', async (t) => {
  const a = sampleEmsConfig() as any
  const b = structuredClone(a)
  setPath(b, '/scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts', 45000)
  t.same(diff(a, b), [{ path: '/scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts', from: 50000, to: 45000 }])
  const layer = {}
  setPath(layer, '/scheduler/controllers/ctrlPeakShaving0/parameters/threshold_watts', 1)
  t.same(layer, { scheduler: { controllers: [{ id: 'ctrlPeakShaving0', parameters: { threshold_watts: 1 } }] } })
})
