import t from 'tap'
import { DEFAULT_SITE, loadShape, SiteModel, solarShape } from '../../../src/sim/site-model.js'

t.test('PV follows the sun: nothing at night, east peaks before west, never above the peak', async (t) => {
  t.equal(solarShape(2, 11), 0)
  t.equal(solarShape(22, 14), 0)
  t.equal(solarShape(11, 11), 1)
  t.ok(solarShape(9, 11) > solarShape(9, 14), 'the east array produces more in the morning')
  t.ok(solarShape(16, 14) > solarShape(16, 11), 'the west array produces more in the afternoon')
  const m = new SiteModel(DEFAULT_SITE, 7)
  for (let h = 0; h < 24; h += 0.25) {
    const r = m.step(h, 900)
    t.ok(r.pvWest >= 0 && r.pvWest <= DEFAULT_SITE.pvPeaks[0], `west within 0..peak at ${h}`)
    t.ok(r.pvEast >= 0 && r.pvEast <= DEFAULT_SITE.pvPeaks[1], `east within 0..peak at ${h}`)
  }
})

t.test('the load has a base, a morning bump and a larger evening bump', async (t) => {
  t.ok(Math.abs(loadShape(3) - 1) < 0.01)
  t.ok(loadShape(7.5) > 1.5)
  t.ok(loadShape(19) > loadShape(7.5))
})

t.test('the grid meter closes the balance; the battery follows its setpoint within its limits', async (t) => {
  const m = new SiteModel({ ...DEFAULT_SITE, initialSoc: 50 }, 3)
  m.setBatterySetpoint(2000)
  const r = m.step(12, 1)
  t.equal(r.battery, 2000)
  t.equal(r.grid, r.consumption - r.pvWest - r.pvEast - r.battery)
  t.ok(r.soc < 50, 'discharging lowers the state of charge')
  m.setBatterySetpoint(-1_000_000)
  const c = m.step(12, 1)
  t.equal(c.battery, -DEFAULT_SITE.batteryMaxW, 'clamped to the battery\'s power')
  t.ok(c.soc > r.soc, 'charging raises it')
})

t.test('an empty battery stops discharging and a full one stops charging', async (t) => {
  const empty = new SiteModel({ ...DEFAULT_SITE, initialSoc: 5 }, 1)
  empty.setBatterySetpoint(3000)
  t.equal(empty.step(20, 1).battery, 0)
  const full = new SiteModel({ ...DEFAULT_SITE, initialSoc: 100 }, 1)
  full.setBatterySetpoint(-3000)
  t.equal(full.step(13, 1).battery, 0)
  t.equal(full.step(13, 1).soc, 100)
})

t.test('energy counters grow and each seed has its own weather', async (t) => {
  const a = new SiteModel(DEFAULT_SITE, 1)
  const b = new SiteModel(DEFAULT_SITE, 2)
  let ra = a.step(12, 60)
  let rb = b.step(12, 60)
  for (let i = 0; i < 30; i++) { ra = a.step(12, 60); rb = b.step(12, 60) }
  t.ok(ra.energy.pvWest > 0 && ra.energy.consumption > 0)
  t.not(ra.consumption + ra.pvWest, rb.consumption + rb.pvWest, 'two seeds differ')
  const again = new SiteModel(DEFAULT_SITE, 1)
  let r2 = again.step(12, 60)
  for (let i = 0; i < 30; i++) r2 = again.step(12, 60)
  t.same(r2, ra, 'one seed is reproducible')
})
