/**
 * The simulated devices are as strict as the profiled devices' datasheets, seen by an independent
 * client that speaks raw Modbus TCP bytes (not our client library): only their own unit id, only
 * mapped registers (exception 02), FC03 and FC04 served, FC01/02 refused (01), read-only registers
 * refuse writes (02), more than 125 registers refused (03). The PV inverter obeys PowerLimit.
 * Our runtime's client turns each exception into a clear device error.
 */
import net from 'node:net'
import t, { type Test } from 'tap'
import { DeviceError } from '../../../src/common/errors.js'
import { loadProfiles } from '../../../src/ems/common/profiles.js'
import { ModbusConnection, SimulatedDevice } from '../../../src/ems/edge/modbus.js'
import { SimEdge } from '../../../src/sim/edge.js'

/** One request/answer over a fresh TCP connection; undefined when the device stays silent. */
async function raw (port: number, unit: number, pdu: number[], waitMs = 400): Promise<number[] | undefined> {
  const sock = net.connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  const frame = Buffer.from([0x12, 0x34, 0, 0, 0, pdu.length + 1, unit, ...pdu])
  const answer = new Promise<number[] | undefined>((resolve) => {
    const timer = setTimeout(() => { resolve(undefined) }, waitMs)
    sock.once('data', (d) => { clearTimeout(timer); resolve([...d]) })
  })
  sock.write(frame)
  const a = await answer
  sock.destroy()
  return a
}
const u16 = (n: number): number[] => [n >> 8, n & 0xff]
/** The PDU of an answer (function code onwards), after checking the MBAP header echoes ours. */
function pduOf (t: Test, a: number[] | undefined, unit: number): number[] {
  t.ok(a !== undefined, 'answered')
  t.same(a?.slice(0, 4), [0x12, 0x34, 0, 0], 'transaction and protocol id echoed')
  t.equal(a?.[6], unit, 'unit id echoed')
  return a?.slice(7) ?? []
}

async function battery (t: Test): Promise<{ dev: SimulatedDevice, port: number }> {
  const dev = new SimulatedDevice(loadProfiles().get('battery')!, { unitId: 3 })
  dev.set('Soc', 77)
  const port = await dev.listen('127.0.0.1')
  t.teardown(async () => { await dev.close() })
  return { dev, port }
}

t.test('reads: mapped registers by FC03 and FC04; unmapped ones are exception 02', async (t) => {
  const { port } = await battery(t)
  t.same(pduOf(t, await raw(port, 3, [3, ...u16(0), ...u16(1)]), 3), [3, 2, 0, 77], 'FC03 Soc')
  t.same(pduOf(t, await raw(port, 3, [4, ...u16(0), ...u16(1)]), 3), [4, 2, 0, 77], 'FC04 Soc')
  t.same(pduOf(t, await raw(port, 3, [3, ...u16(40), ...u16(1)]), 3), [0x83, 2], 'unmapped address: 02')
  t.same(pduOf(t, await raw(port, 3, [3, ...u16(8), ...u16(2)]), 3), [0x83, 2], 'a range running off the map: 02')
  t.same(pduOf(t, await raw(port, 3, [3, ...u16(0), ...u16(126)]), 3), [0x83, 3], '126 registers: 03')
  t.same(pduOf(t, await raw(port, 3, [3, ...u16(0), ...u16(200)]), 3), [0x83, 3], '200 registers: 03, not 04')
})

t.test('function codes and unit ids a real device refuses', async (t) => {
  const { port } = await battery(t)
  t.same(pduOf(t, await raw(port, 3, [1, ...u16(0), ...u16(8)]), 3), [0x81, 1], 'FC01 coils: 01')
  t.same(pduOf(t, await raw(port, 3, [2, ...u16(0), ...u16(8)]), 3), [0x82, 1], 'FC02 discrete inputs: 01')
  t.same(pduOf(t, await raw(port, 3, [0x2b, 0x0e, 1, 0]), 3).slice(0, 2), [0xab, 1], 'FC43 device id: 01')
  t.equal(await raw(port, 9, [3, ...u16(0), ...u16(1)]), undefined, 'another unit id: no answer')
})

t.test('writes: writable channels only; a setpoint reaches the simulation', async (t) => {
  const { dev, port } = await battery(t)
  t.same(pduOf(t, await raw(port, 3, [6, ...u16(0), ...u16(50)]), 3), [0x86, 2], 'FC06 to read-only Soc: 02')
  t.same(pduOf(t, await raw(port, 3, [0x10, ...u16(1), ...u16(2), 4, 0, 0, 0, 9]), 3), [0x90, 2],
    'FC16 to read-only ActivePower: 02')
  t.equal(dev.get('Soc'), 77, 'nothing was written')
  t.same(pduOf(t, await raw(port, 3, [0x10, ...u16(3), ...u16(2), 4, 0, 0, 0x03, 0xe8]), 3), [0x10, ...u16(3), ...u16(2)],
    'FC16 to SetPower: accepted')
  t.same(dev.writes.map((w) => [w.channel, w.value]), [['SetPower', 1000]])
})

t.test('our client turns exceptions and silence into clear device errors', async (t) => {
  const { port } = await battery(t)
  const c = new ModbusConnection('127.0.0.1', port, 300)
  t.teardown(() => { c.close() })
  t.equal(await c.read(3, { address: 0, type: 'uint16' }), 77)
  await t.rejects(c.read(3, { address: 40, type: 'uint16' }), new DeviceError(
    `127.0.0.1:${port} unit 3: exception 02 (illegal data address: the profile does not match the device, or the register is read-only) reading 1 register(s) at 40`))
  await t.rejects(c.write(3, { address: 0, type: 'uint16' }, 5), { code: 'SYNC_ERR_DEVICE', message: /exception 02.*writing/ })
  await t.rejects(c.read(9, { address: 0, type: 'uint16' }), { code: 'SYNC_ERR_DEVICE', message: /unit 9: no answer.*wrong unit id/ })
})

t.test('the PV inverter obeys PowerLimit: production is curtailed, the grid carries the rest', async (t) => {
  const edge = new SimEdge({ id: 'e', secret: 's', site: 'A', seed: 7 }, loadProfiles())
  const port = await edge.devices.pv_west.listen('127.0.0.1')
  t.teardown(async () => { await edge.devices.pv_west.close() })
  const noon = new Date('2026-06-01T14:00:00').getTime()
  edge.tick(noon - 1000)
  edge.tick(noon)
  const free = edge.last?.pvWest ?? 0
  t.ok(free > 1000, `west array produces ${free} W at 14:00`)
  const c = new ModbusConnection('127.0.0.1', port, 500)
  t.teardown(() => { c.close() })
  t.equal(await c.read(1, { address: 2, type: 'uint16' }), 100, 'PowerLimit reads 100 % at start')
  await c.write(1, { address: 2, type: 'uint16' }, 20)
  edge.tick(noon + 1000)
  const capped = edge.last?.pvWest ?? -1
  t.ok(capped <= 3000 * 0.2, `curtailed to ${capped} W (20 % of the 3,000 W peak)`)
  t.equal(await c.read(1, { address: 0, type: 'int32' }), capped, 'the inverter reports the curtailed power')
})
