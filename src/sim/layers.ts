/**
 * The EMS layers the simulator installs: an org layer with the site's devices and controllers
 * (self-consumption balancing, then peak shaving), and per edge a layer with the loopback ports
 * its simulated devices listen on.
 */
import type { DeviceId } from './edge.js'

export function simOrgLayer (cyclePeriodMs = 1000): Record<string, unknown> {
  const device = (
    id: DeviceId,
    profile: string,
    fast: string[],
    slow: string[]
  ): Record<string, unknown> => ({
    device_id: id,
    profile,
    connection: { protocol: 'tcp', host: '127.0.0.1', unit_id: 1 },
    poll_groups: { fast, slow }
  })
  return {
    core_cycle: { period_ms: cyclePeriodMs, health_window_ms: 2 * cyclePeriodMs },
    scheduler: {
      controllers: [
        {
          id: 'ctrlBalancing0',
          class: 'BalancingController',
          enabled: true,
          execution_order: 1,
          parameters: { target_grid_power: 0 },
          battery: 'bms_main',
          meter: 'grid'
        },
        {
          id: 'ctrlPeakShaving0',
          class: 'PeakShavingController',
          enabled: true,
          execution_order: 2,
          parameters: { threshold_watts: 4000, recharge_enabled: false },
          battery: 'bms_main',
          meter: 'grid'
        }
      ]
    },
    modbus_devices: [
      device('grid', 'grid_meter', ['ActivePower'], ['Voltage', 'EnergyImport', 'EnergyExport']),
      device('pv_west', 'pv_inverter', ['ActivePower'], ['Energy']),
      device('pv_east', 'pv_inverter', ['ActivePower'], ['Energy']),
      device('consumption', 'consumption_meter', ['ActivePower'], ['Energy']),
      device('bms_main', 'battery', ['ActivePower', 'Soc'], ['Temperature'])
    ],
    alarms: [
      { id: 'alarm_soc_low', channel: 'bms_main/Soc', condition: '<', threshold: 10, severity: 'warning' }
    ]
  }
}

export function simEdgeLayer (ports: Record<DeviceId, number>): Record<string, unknown> {
  return {
    modbus_devices: Object.entries(ports).map(([id, port]) => ({ device_id: id, connection: { port } }))
  }
}
