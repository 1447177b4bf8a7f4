/**
 * A config whose device settings do not match the device (a wrong unit id: the device stays
 * silent; a profile that does not match: exception 02) gives a clear device error, raises a
 * `device_fault:<id>` alarm, and counts against the config's health (the plugin rolls it back).
 */
import t from 'tap'
import type { EmsConfig } from '../../../src/ems/common/schema.js'
import { EmsRuntime } from '../../../src/ems/edge/runtime.js'
import { captureLogger } from '../../helpers/capture-log.js'
import { waitFor } from '../../helpers/cluster.js'
import { sampleEmsConfig } from '../../helpers/ems.js'
import { startEdgeDevices } from '../../helpers/sim-devices.js'

type Cfg = EmsConfig & { modbus_devices: Array<{ device_id: string, profile: string, connection: { unit_id: number, port: number } }> }

t.test('wrong unit id and wrong profile: clear errors, fault alarms, unhealthy', async (t) => {
  const devices = await startEdgeDevices(t, 500)
  const cfg = sampleEmsConfig('127.0.0.1', devices.ports) as unknown as Cfg
  cfg.core_cycle.period_ms = 200
  const grid = cfg.modbus_devices.find((d) => d.device_id === 'grid')
  if (grid !== undefined) grid.connection.unit_id = 7 // the meter answers unit 1 only
  const pv = cfg.modbus_devices.find((d) => d.device_id === 'inverter_pv')
  if (pv !== undefined) { pv.profile = 'battery'; pv.connection.unit_id = 2 } // a battery map on an inverter
  const runtime = new EmsRuntime(captureLogger())
  t.teardown(() => { runtime.stop() })
  await runtime.apply(cfg)
  const alarms = await waitFor('both faults raised', async () => {
    const a = runtime.stats.activeAlarms
    return a.includes('device_fault:grid') && a.includes('device_fault:inverter_pv') ? a : undefined
  }, 10_000)
  t.ok(alarms.includes('device_fault:grid'), 'the silent meter raises a fault alarm')
  t.ok(runtime.stats.deviceErrors > 0)
  t.ok(alarms.includes('device_fault:inverter_pv'), 'so does the mismatched profile')
  const failures = runtime.failures
  t.ok(failures.some((f) => /device grid: .*unit 7: no answer .*wrong unit id/.test(f)), 'the error names the unit and the likely cause')
  t.ok(failures.some((f) => /device inverter_pv: .*exception 02 \(illegal data address: the profile does not match/.test(f)),
    'the exception is named with its likely cause')
})
