/**
 * `apply: immediate` makes the controllers run with the new parameters at once (the battery gets
 * its new setpoint well inside one core cycle period); `next_cycle` waits for the next tick. Read
 * back from the simulated battery's SetPower register over Modbus TCP.
 */
import t from 'tap'
import type { EmsConfig } from '../../../src/ems/common/schema.js'
import { EmsRuntime } from '../../../src/ems/edge/runtime.js'
import { captureLogger } from '../../helpers/capture-log.js'
import { waitFor } from '../../helpers/cluster.js'
import { sampleEmsConfig } from '../../helpers/ems.js'
import { startEdgeDevices } from '../../helpers/sim-devices.js'

type Cfg = EmsConfig & { scheduler: { controllers: Array<{ parameters: Record<string, unknown> }> } }
const PERIOD = 4000

t.test('immediate runs the controllers now; next_cycle at the next tick', async (t) => {
  const devices = await startEdgeDevices(t, 500)
  const config = (target: number, apply: 'immediate' | 'next_cycle'): Cfg => {
    const c = sampleEmsConfig('127.0.0.1', devices.ports) as unknown as Cfg
    c.core_cycle.period_ms = PERIOD
    c.core_cycle.apply = apply
    const balancing = c.scheduler.controllers[0]
    if (balancing !== undefined) balancing.parameters.target_grid_power = target
    const peak = c.scheduler.controllers[1]
    if (peak !== undefined) peak.parameters = { threshold_watts: 100_000, recharge_enabled: false }
    return c
  }
  const setpoints = (): number[] => devices.battery.writes.filter((w) => w.channel === 'SetPower').map((w) => w.value)
  const runtime = new EmsRuntime(captureLogger())
  t.teardown(() => { runtime.stop() })
  const t0 = Date.now()
  await runtime.apply(config(0, 'next_cycle'))
  await waitFor('the first setpoint', async () => setpoints().length > 0 ? true : undefined)
  t.ok(Date.now() - t0 < PERIOD / 2, 'a starting runtime controls at once, not after a period')
  t.equal(setpoints().at(-1), 500, 'balancing to 0 W: the battery covers the 500 W house load')

  const t1 = Date.now()
  await runtime.apply(config(-1000, 'immediate'))
  await waitFor('the immediate setpoint', async () => setpoints().at(-1) === 1500 ? true : undefined, PERIOD)
  t.ok(Date.now() - t1 < PERIOD / 2, `immediate: new setpoint after ${Date.now() - t1} ms, within half a period`)

  const t2 = Date.now()
  await runtime.apply(config(0, 'next_cycle'))
  const waited = Date.now() - t2
  t.ok(waited > PERIOD / 2, `next_cycle: the config took effect at the next tick (${waited} ms later)`)
  await waitFor('the next-cycle setpoint', async () => setpoints().at(-1) === 500 ? true : undefined)
  t.pass('and the controllers ran with it in that cycle')
})
