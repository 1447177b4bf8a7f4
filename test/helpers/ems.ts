/** A valid EMS configuration (the seed's example on our device profiles). */
export function sampleEmsConfig (host = '127.0.0.1', ports = { meter: 5020, battery: 5021, pv: 5022 }): Record<string, unknown> {
  return {
    core_cycle: { period_ms: 1000, supervisor: { overrun_alert_threshold: 2, auto_recovery: true } },
    scheduler: {
      controllers: [
        { id: 'ctrlBalancing0', class: 'BalancingController', enabled: true, execution_order: 1, parameters: { target_grid_power: 0, priority: 'self_consumption' }, battery: 'bms_main', meter: 'grid' },
        { id: 'ctrlPeakShaving0', class: 'PeakShavingController', enabled: true, execution_order: 2, parameters: { threshold_watts: 50000, recharge_enabled: true }, battery: 'bms_main', meter: 'grid' }
      ]
    },
    modbus_devices: [
      { device_id: 'grid', profile: 'grid_meter', connection: { protocol: 'tcp', host, port: ports.meter, unit_id: 1 }, poll_groups: { fast: ['ActivePower'], slow: ['Voltage'] } },
      { device_id: 'bms_main', profile: 'battery', connection: { protocol: 'tcp', host, port: ports.battery, unit_id: 1 }, poll_groups: { fast: ['ActivePower', 'Soc'], slow: ['Temperature', 'Cycles'] } },
      { device_id: 'inverter_pv', profile: 'pv_inverter', connection: { protocol: 'tcp', host, port: ports.pv, unit_id: 2 } }
    ],
    alarms: [
      { id: 'alarm_soc_low', channel: 'bms_main/Soc', condition: '<', threshold: 20, severity: 'warning', notification: ['email', 'dashboard'] }
    ]
  }
}
