/**
 * Peak shaving caps what the site draws from the grid, whatever draws it: here the balancing
 * controller charges the battery from the grid (target 2,016 W import) while the house takes 500 W,
 * and the threshold is 1,000 W. Read back from the simulated battery's SetPower register over
 * Modbus TCP, as the device sees it (discharge positive, charge negative).
 */
import t, { type Test } from 'tap'
import type { EmsConfig } from '../../../src/ems/common/schema.js'
import { EmsRuntime } from '../../../src/ems/edge/runtime.js'
import { sampleEmsConfig } from '../../helpers/ems.js'
import { captureLogger } from '../../helpers/capture-log.js'
import { startEdgeDevices } from '../../helpers/sim-devices.js'
import { waitFor } from '../../helpers/cluster.js'

type Controller = { id: string, enabled: boolean, execution_order: number, parameters: Record<string, unknown> }

async function setpointWith (t: Test, edit: (controllers: Controller[]) => void): Promise<number> {
  const devices = await startEdgeDevices(t, 500) // the house imports 500 W, the battery idles
  const cfg = sampleEmsConfig('127.0.0.1', devices.ports) as unknown as EmsConfig & { scheduler: { controllers: Controller[] } }
  cfg.core_cycle.period_ms = 100
  const [balancing, peak] = cfg.scheduler.controllers
  if (balancing === undefined || peak === undefined) throw new Error('sample config changed')
  balancing.parameters.target_grid_power = 2016 // charge the battery from the grid
  peak.parameters = { threshold_watts: 1000, recharge_enabled: false }
  edit(cfg.scheduler.controllers)
  const runtime = new EmsRuntime(captureLogger())
  t.teardown(() => { runtime.stop() })
  await runtime.apply(cfg)
  const first = await waitFor('a setpoint', async () => devices.battery.writes.find((w) => w.channel === 'SetPower'))
  return first.value
}

t.test('balancing alone charges at 1,516 W: 2,016 W from the grid', async (t) => {
  t.equal(await setpointWith(t, (c) => { if (c[1] !== undefined) c[1].enabled = false }), -1516)
})

t.test('with peak shaving at 1,000 W the charge is cut to 500 W: the grid carries 1,000 W', async (t) => {
  t.equal(await setpointWith(t, () => {}), -500)
})

t.test('the cap holds whatever the execution order', async (t) => {
  t.equal(await setpointWith(t, (c) => { if (c[0] !== undefined && c[1] !== undefined) { c[0].execution_order = 2; c[1].execution_order = 1 } }), -500)
})
