/**
 * Modbus TCP, both ends: the client the EMS runtime polls devices with, and the server simulated
 * devices answer on (tests and the simulator). The only `modbus-serial` import.
 */
import { createRequire } from 'node:module'
import modbusSerial, { ServerTCP } from 'modbus-serial'
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js'
import type { Channel, DeviceProfile } from '../common/profiles.js'
import { channelWords } from '../common/profiles.js'
import { freePort } from '../../common/ports.js'
import { DeviceError } from '../../common/errors.js'

function toWords (c: Channel, value: number): number[] {
  const raw = Math.round(value / (c.scale ?? 1))
  if (c.type === 'int32' || c.type === 'uint32') {
    const u = raw < 0 ? raw + 2 ** 32 : raw
    return [Math.floor(u / 65536) & 0xffff, u & 0xffff]
  }
  return [(raw < 0 ? raw + 65536 : raw) & 0xffff]
}

function fromWords (c: Channel, words: number[]): number {
  let v: number
  if (c.type === 'int32' || c.type === 'uint32') {
    const u = (words[0] ?? 0) * 65536 + (words[1] ?? 0)
    v = c.type === 'int32' && u >= 2 ** 31 ? u - 2 ** 32 : u
  } else {
    const u = words[0] ?? 0
    v = c.type === 'int16' && u >= 32768 ? u - 65536 : u
  }
  return v * (c.scale ?? 1)
}

/** Modbus exception codes, with the config mistake each usually means. */
const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function: the device does not support this request',
  2: 'illegal data address: the profile does not match the device, or the register is read-only',
  3: 'illegal data value: too many registers or a value out of range',
  4: 'device failure',
  6: 'device busy',
  11: 'gateway target did not respond: wrong unit id behind a gateway'
}

/** One Modbus TCP connection (host:port), shared by the devices (unit ids) behind it. */
// A CommonJS package: its default import is the client class itself.
const ClientClass = modbusSerial as unknown as new () => ModbusClient

export class ModbusConnection {
  readonly #client = new ClientClass()
  readonly #host: string
  readonly #port: number
  readonly #timeoutMs: number
  #queue: Promise<unknown> = Promise.resolve()

  constructor (host: string, port: number, timeoutMs = 1000) {
    this.#host = host
    this.#port = port
    this.#timeoutMs = timeoutMs
  }

  // Requests on one connection are serialized: Modbus TCP clients answer one at a time.
  async #run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn)
    this.#queue = next.catch(() => {})
    return await next
  }

  async #ensure (): Promise<void> {
    if (this.#client.isOpen) return
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        this.#client.connectTCP(this.#host, { port: this.#port, timeout: this.#timeoutMs }),
        new Promise((_resolve, reject) => {
          timer = setTimeout(() => {
            reject(new DeviceError(`connect to ${this.#host}:${this.#port} timed out`))
          }, this.#timeoutMs)
        })
      ])
    } finally {
      clearTimeout(timer)
    }
    this.#client.setTimeout(this.#timeoutMs)
  }

  async read (unit: number, c: Channel): Promise<number> {
    return await this.#run(async () => {
      await this.#ensure()
      this.#client.setID(unit)
      try {
        const r = await this.#client.readHoldingRegisters(c.address, channelWords(c))
        return fromWords(c, r.data)
      } catch (err) {
        throw this.#deviceError(err, unit, `reading ${channelWords(c)} register(s) at ${c.address}`)
      }
    })
  }

  async write (unit: number, c: Channel, value: number): Promise<void> {
    await this.#run(async () => {
      await this.#ensure()
      this.#client.setID(unit)
      try {
        await this.#client.writeRegisters(c.address, toWords(c, value))
      } catch (err) {
        throw this.#deviceError(err, unit, `writing ${channelWords(c)} register(s) at ${c.address}`)
      }
    })
  }

  /** What went wrong, in the device's terms, with the likely cause in the config. */
  #deviceError (err: unknown, unit: number, what: string): DeviceError {
    const where = `${this.#host}:${this.#port} unit ${unit}`
    const code = (err as { modbusCode?: number }).modbusCode
    if (code !== undefined) {
      const why = EXCEPTIONS[code] ?? 'device-specific exception'
      return new DeviceError(`${where}: exception ${String(code).padStart(2, '0')} (${why}) ${what}`, { cause: err })
    }
    const e = err as { name?: string, message?: string }
    if (e.name === 'TransactionTimedOutError') {
      return new DeviceError(`${where}: no answer ${what} (wrong unit id, or the device is busy)`, { cause: err })
    }
    return new DeviceError(`${where}: ${e.message ?? String(err)} ${what}`, { cause: err })
  }

  close (): void {
    if (this.#client.isOpen) this.#client.close(() => {})
  }
}

const MAX_WRITES_KEPT = 1000
/** The Modbus limits on registers per request (read: FC03/04, write: FC16). */
const MAX_READ = 125
const MAX_WRITE = 123

/** A Modbus exception the server answers with (01 illegal function, 02 address, 03 value). */
function exception (code: 1 | 2 | 3, msg: string): { modbusErrorCode: number, msg: string } {
  return { modbusErrorCode: code, msg }
}

// modbus-serial's server builds the FC03/FC04 answer before asking the register map, and fails
// with exception 04 (device failure) on a count above 127. Real devices answer exception 03
// (illegal data value) for any count above the Modbus limit: check the count first.
type Handler = (req: Buffer, vector: unknown, unit: number, cb: (err: unknown, res?: Buffer) => void) => void
const handlers = createRequire(import.meta.url)('modbus-serial/servers/servertcp_handler.js') as Record<string, Handler>
for (const [name, limit] of [['readMultipleRegisters', MAX_READ], ['readInputRegisters', MAX_READ],
  ['writeMultipleRegisters', MAX_WRITE]] as const) {
  const original = handlers[name]
  if (original === undefined || (original as { strict?: boolean }).strict === true) continue
  const strict: Handler = (req, vector, unit, cb) => {
    const count = req.length >= 6 ? req.readUInt16BE(4) : 0
    if (count > limit) {
      const res = Buffer.alloc(5)
      res.writeUInt8(3, 2)
      cb(exception(3, `${count} registers: more than ${limit}`), res)
      return
    }
    original(req, vector, unit, cb)
  }
  handlers[name] = Object.assign(strict, { strict: true })
}

export interface SimulatedDeviceOptions {
  /** The Modbus unit id it answers to (requests for others get no answer, as on a real device). */
  unitId?: number
}

/**
 * A simulated device: a register map from a profile, served over Modbus TCP as strictly as the
 * profiled devices' datasheets say: it answers its own unit id only, holding (FC03) and input
 * (FC04) registers of its channels only (exception 02 elsewhere), writes (FC06/FC16) to writable
 * channels only (02), no coils or discrete inputs (FC01/FC02: exception 01), and at most 125
 * registers a read (03).
 */
export class SimulatedDevice {
  readonly registers = new Map<number, number>()
  readonly writes: Array<{ channel: string; value: number; at: number }> = []
  readonly profile: DeviceProfile
  readonly unitId: number
  /** Addresses of each channel's words: readable, and writable for writable channels. */
  readonly #readable = new Set<number>()
  readonly #writable = new Set<number>()
  #server: ServerTCP | undefined

  constructor (profile: DeviceProfile, opts: SimulatedDeviceOptions = {}) {
    this.profile = profile
    this.unitId = opts.unitId ?? 1
    for (const c of Object.values(profile.channels)) {
      for (let i = 0; i < channelWords(c); i++) {
        this.#readable.add(c.address + i)
        if (c.writable === true) this.#writable.add(c.address + i)
      }
    }
  }

  set (channel: string, value: number): void {
    const c = this.profile.channels[channel]
    if (c === undefined) throw new DeviceError(`${this.profile.id} has no channel ${channel}`)
    toWords(c, value).forEach((w, i) => this.registers.set(c.address + i, w))
  }

  get (channel: string): number {
    const c = this.profile.channels[channel]
    if (c === undefined) throw new DeviceError(`${this.profile.id} has no channel ${channel}`)
    return fromWords(
      c,
      Array.from({ length: channelWords(c) }, (_, i) => this.registers.get(c.address + i) ?? 0)
    )
  }

  /** Called after a client wrote a channel (simulations react to setpoints here). */
  onWrite: (channel: string, value: number) => void = () => {}

  /** Serves the registers on host:port (0: a free port); resolves to the port bound. */
  async listen (host: string, port = 0): Promise<number> {
    // ServerTCP treats port 0 as "use 502": pick a free port first, again if another took it.
    for (let attempt = 0; ; attempt++) {
      const p = port === 0 ? await freePort(host) : port
      try {
        await this.#serve(host, p)
        return p
      } catch (err) {
        if (port !== 0 || attempt >= 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
      }
    }
  }

  #read (addr: number, count: number): number[] {
    for (let a = addr; a < addr + count; a++) {
      if (!this.#readable.has(a)) throw exception(2, `No register at ${a}`)
    }
    return Array.from({ length: count }, (_, i) => this.registers.get(addr + i) ?? 0)
  }

  #write (addr: number, values: number[]): void {
    for (let a = addr; a < addr + values.length; a++) {
      if (!this.#writable.has(a)) throw exception(2, `Register ${a} is not writable`)
    }
    values.forEach((v, i) => this.registers.set(addr + i, v))
    const end = addr + values.length - 1
    // A channel is complete once its last word arrived.
    for (const [name, c] of Object.entries(this.profile.channels)) {
      const last = c.address + channelWords(c) - 1
      if (c.writable !== true || last < addr || last > end) continue
      const v = this.get(name)
      this.writes.push({ channel: name, value: v, at: Date.now() })
      // Kept for inspection; bounded because a simulated device may run for days.
      if (this.writes.length > MAX_WRITES_KEPT) this.writes.splice(0, this.writes.length - MAX_WRITES_KEPT)
      this.onWrite(name, v)
    }
  }

  async #serve (host: string, port: number): Promise<void> {
    const noBits = (): never => { throw exception(1, 'This device has no coils or discrete inputs') }
    this.#server = new ServerTCP(
      {
        getHoldingRegister: (addr: number) => this.#read(addr, 1)[0],
        getMultipleHoldingRegisters: (addr: number, count: number) => this.#read(addr, count),
        getInputRegister: (addr: number) => this.#read(addr, 1)[0],
        getMultipleInputRegisters: (addr: number, count: number) => this.#read(addr, count),
        getCoil: noBits,
        getDiscreteInput: noBits,
        setRegister: (addr: number, value: number) => { this.#write(addr, [value]) },
        setRegisterArray: (addr: number, values: number[]) => { this.#write(addr, values) }
      },
      { host, port, unitID: this.unitId }
    )
    await new Promise<void>((resolve, reject) => {
      this.#server?.once('initialized', () => resolve())
      this.#server?.once('serverError', (err) => reject(err ?? new DeviceError('Modbus server failed')))
    })
  }

  async close (): Promise<void> {
    const s = this.#server
    if (s === undefined) return
    for (const sock of s.socks.keys()) sock.destroy()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
}
