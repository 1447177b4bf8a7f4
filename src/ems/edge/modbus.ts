/**
 * Modbus TCP, both ends: the client the EMS runtime polls devices with, and the server simulated
 * devices answer on (tests and the simulator). The only `modbus-serial` import.
 */
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
      const r = await this.#client.readHoldingRegisters(c.address, channelWords(c))
      return fromWords(c, r.data)
    })
  }

  async write (unit: number, c: Channel, value: number): Promise<void> {
    await this.#run(async () => {
      await this.#ensure()
      this.#client.setID(unit)
      await this.#client.writeRegisters(c.address, toWords(c, value))
    })
  }

  close (): void {
    if (this.#client.isOpen) this.#client.close(() => {})
  }
}

const MAX_WRITES_KEPT = 1000

/** A simulated device: a register map from a profile, served over Modbus TCP. */
export class SimulatedDevice {
  readonly registers = new Map<number, number>()
  readonly writes: Array<{ channel: string; value: number; at: number }> = []
  readonly profile: DeviceProfile
  #server: ServerTCP | undefined

  constructor (profile: DeviceProfile) {
    this.profile = profile
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

  async #serve (host: string, port: number): Promise<void> {
    const byAddress = new Map(Object.entries(this.profile.channels).map(([name, c]) => [c.address, name]))
    this.#server = new ServerTCP(
      {
        getHoldingRegister: (addr: number) => this.registers.get(addr) ?? 0,
        setRegister: (addr: number, value: number) => {
          this.registers.set(addr, value)
          // A channel is complete once its last word arrived.
          for (const [start, name] of byAddress) {
            const c = this.profile.channels[name]
            if (c === undefined || c.writable !== true || addr !== start + channelWords(c) - 1) continue
            const v = this.get(name)
            this.writes.push({ channel: name, value: v, at: Date.now() })
            // Kept for inspection; bounded because a simulated device may run for days.
            if (this.writes.length > MAX_WRITES_KEPT) {
              this.writes.splice(0, this.writes.length - MAX_WRITES_KEPT)
            }
            this.onWrite(name, v)
          }
        }
      },
      { host, port, unitID: 0 }
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
