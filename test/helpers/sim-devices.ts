/** Simulated Modbus TCP devices for one edge (grid meter, battery, PV inverter) on free loopback ports. */
import type { Test } from 'tap'
import { SimulatedDevice } from '../../src/ems/edge/modbus.js'
import { loadProfiles } from '../../src/ems/common/profiles.js'

export interface EdgeDevices { grid: SimulatedDevice, battery: SimulatedDevice, pv: SimulatedDevice, ports: { meter: number, battery: number, pv: number } }

export async function startEdgeDevices (t: Test, gridWatts: number): Promise<EdgeDevices> {
  const profiles = loadProfiles()
  const grid = new SimulatedDevice(profiles.get('grid_meter')!)
  const battery = new SimulatedDevice(profiles.get('battery')!)
  const pv = new SimulatedDevice(profiles.get('pv_inverter')!, { unitId: 2 }) // unit 2, as the sample config says
  grid.set('ActivePower', gridWatts)
  grid.set('Voltage', 230)
  battery.set('Soc', 80)
  battery.set('ActivePower', 0)
  battery.set('Temperature', 25)
  pv.set('ActivePower', 3000)
  const ports = { meter: await grid.listen('127.0.0.1'), battery: await battery.listen('127.0.0.1'), pv: await pv.listen('127.0.0.1') }
  t.teardown(async () => { await grid.close(); await battery.close(); await pv.close() })
  return { grid, battery, pv, ports }
}

/** The edge layer that points an edge's devices at its own simulated ports. */
export function deviceLayer (ports: EdgeDevices['ports']): Record<string, unknown> {
  return {
    modbus_devices: [
      { device_id: 'grid', connection: { port: ports.meter } },
      { device_id: 'bms_main', connection: { port: ports.battery } },
      { device_id: 'inverter_pv', connection: { port: ports.pv } }
    ]
  }
}
