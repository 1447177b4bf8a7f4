import { readFile } from 'node:fs/promises'
import t from 'tap'
import { EMS_CONFIG_SCHEMA } from '../../../src/ems/common/schema.js'
import { validateEmsConfig } from '../../../src/ems/common/validate.js'
import { sampleEmsConfig } from '../../helpers/ems.js'

t.test('ems - the sample configuration is valid', async (t) => {
  t.same(validateEmsConfig(sampleEmsConfig()), [])
})

t.test('ems - conf/ems-config.schema.json is the schema the code uses', async (t) => {
  t.same(JSON.parse(await readFile(new URL('../../../conf/ems-config.schema.json', import.meta.url), 'utf8')), EMS_CONFIG_SCHEMA)
})

t.test('ems - shape errors name the path and the rule', async (t) => {
  const c = sampleEmsConfig() as { core_cycle: Record<string, unknown> }
  c.core_cycle.period_ms = 10
  const p = validateEmsConfig(c)
  t.equal(p.length, 1)
  t.match(p[0], { path: '/core_cycle/period_ms', rule: 'schema.minimum' })
})

t.test('ems - one pass: shape errors and rule errors together, shape first', async (t) => {
  const c = sampleEmsConfig() as any
  c.core_cycle.period_ms = 10
  c.alarms[0].channel = 'ghost/Soc'
  t.same(validateEmsConfig(c).map((p) => `${p.path} ${p.rule}`), [
    '/core_cycle/period_ms schema.minimum',
    '/alarms/0/channel device-exists'
  ])
})

t.test('ems - Modbus hosts must be host names or IP addresses', async (t) => {
  for (const [host, ok] of [['not a host!!', false], ['-bad.example', false], ['a..b', false], ['plc-1.site.local', true],
    ['10.0.0.7', true], ['::1', true], ['fe80::1%eth0', true], ['x'.repeat(64), false]] as const) {
    const c = sampleEmsConfig() as any
    c.modbus_devices[0].connection.host = host
    const bad = validateEmsConfig(c).filter((p) => p.rule === 'host-valid')
    t.equal(bad.length, ok ? 0 : 1, `${host}: ${ok ? 'accepted' : 'refused'}`)
  }
})

t.test('ems - semantic rules: unique ids and units, references, channels, ranges, parameters', async (t) => {
  const c = sampleEmsConfig() as any
  c.modbus_devices.push({ ...c.modbus_devices[0] }) // duplicate device id and unit
  c.scheduler.controllers[1].execution_order = 1
  c.scheduler.controllers[1].parameters.threshold_watts = -5
  c.scheduler.controllers[0].battery = 'nope'
  c.scheduler.controllers[0].meter = 'bms_main'
  c.modbus_devices[1].poll_groups.fast.push('Bogus')
  c.alarms.push({ id: 'alarm_soc_low', channel: 'bms_main/Soc', condition: '>', threshold: 150, severity: 'critical' })
  c.alarms.push({ id: 'a3', channel: 'ghost/Soc', condition: '>', threshold: 1, severity: 'info' })
  const rules = validateEmsConfig(c).map((p) => `${p.path} ${p.rule}`)
  for (const want of [
    '/modbus_devices/3/device_id unique-device-id',
    '/modbus_devices/0/connection/unit_id unique-unit-id',
    '/scheduler/controllers/1/execution_order unique-execution-order',
    '/scheduler/controllers/1/parameters/threshold_watts parameters.minimum',
    '/scheduler/controllers/0/battery device-exists',
    '/scheduler/controllers/0/meter device-role',
    '/modbus_devices/1/poll_groups/fast/2 channel-exists',
    '/alarms/1/id unique-alarm-id',
    '/alarms/1/threshold range',
    '/alarms/2/channel device-exists'
  ]) t.ok(rules.includes(want), want)
})

t.test('ems - apply per component: at once only when every changed component says immediate', async (t) => {
  const { EmsRuntime } = await import('../../../src/ems/edge/runtime.js')
  const { silentLogger } = await import('../../../src/common/log.js')
  const rt = new EmsRuntime(silentLogger)
  const base = sampleEmsConfig() as any
  base.core_cycle.apply = { scheduler: 'immediate', modbus_devices: 'next_cycle' }
  t.same(validateEmsConfig(base), [])
  await rt.apply(base, 'immediate')
  const params = structuredClone(base)
  params.scheduler.controllers[1].parameters.threshold_watts = 1
  t.equal(rt.whenFor(params), 'immediate', 'a controller parameter change applies at once')
  const device = structuredClone(params)
  device.modbus_devices[0].connection.port = 6000
  t.equal(rt.whenFor(device), 'next_cycle', 'a device change waits for the next cycle')
  t.equal(rt.whenFor({ ...base, core_cycle: { ...base.core_cycle, apply: 'immediate' } }), 'immediate')
  rt.stop()
})
