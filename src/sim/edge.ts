/**
 * One simulated edge: its five Modbus TCP devices (grid meter, two PV production meters, a
 * consumption meter, a battery) on free loopback ports, driven by a SiteModel once a second, and a
 * real ESS with the EMS plugin that polls them and writes the battery setpoint.
 */
import path from 'node:path'
import { buildConfig } from '../common/config/load.js'
import type { Logger } from '../common/log.js'
import { SimulatedDevice } from '../ems/edge/modbus.js'
import type { DeviceProfile } from '../ems/common/profiles.js'
import { startEss as startEdgeSyncService, type EssHandle } from '../app/ess.js'
import { SiteModel, type SiteReadings } from './site-model.js'
import { ConfigError, SyncErrorCode } from '../common/errors.js'

export interface SimEdgeSpec {
  id: string
  secret: string
  site: string
  seed: number
}
export interface SimEdgeOptions {
  org: string
  destinationType: string
  broker: string
  dir: string
  clock: () => number
  log: Logger
  signingKey?: string | undefined
}

/** Device ids of the simulator's EMS configuration (`simOrgLayer` in layers.ts). */
export const DEVICES = ['grid', 'pv_west', 'pv_east', 'consumption', 'bms_main'] as const
export type DeviceId = (typeof DEVICES)[number]
const PROFILE: Record<DeviceId, string> = {
  grid: 'grid_meter',
  pv_west: 'pv_inverter',
  pv_east: 'pv_inverter',
  consumption: 'consumption_meter',
  bms_main: 'battery'
}

export class SimEdge {
  readonly spec: SimEdgeSpec
  readonly model: SiteModel
  readonly devices: Record<DeviceId, SimulatedDevice>
  readonly ports = {} as Record<DeviceId, number>
  last: SiteReadings | undefined
  #ess: EssHandle | undefined
  #lastTick = 0

  constructor (spec: SimEdgeSpec, profiles: ReadonlyMap<string, DeviceProfile>) {
    this.spec = spec
    this.model = new SiteModel(undefined, spec.seed)
    const make = (d: DeviceId): SimulatedDevice => {
      const p = profiles.get(PROFILE[d])
      if (p === undefined) {
        throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `Device profile ${PROFILE[d]} not found`)
      }
      return new SimulatedDevice(p)
    }
    this.devices = {
      grid: make('grid'),
      pv_west: make('pv_west'),
      pv_east: make('pv_east'),
      consumption: make('consumption'),
      bms_main: make('bms_main')
    }
    this.devices.bms_main.set('MaxPower', this.model.spec.batteryMaxW)
    this.devices.bms_main.onWrite = (channel, value) => {
      if (channel === 'SetPower') this.model.setBatterySetpoint(value)
    }
    // The inverters obey PowerLimit: the model curtails their production to it.
    for (const [i, d] of [[0, 'pv_west'], [1, 'pv_east']] as const) {
      this.devices[d].set('PowerLimit', 100)
      this.devices[d].onWrite = (channel, value) => {
        if (channel === 'PowerLimit') this.model.setPvLimit(i, value)
      }
    }
  }

  /** Starts the devices (so their ports are known), then the ESS. */
  async start (o: SimEdgeOptions): Promise<void> {
    this.#lastTick = o.clock()
    this.tick(o.clock())
    for (const d of DEVICES) this.ports[d] = await this.devices[d].listen('127.0.0.1', 0)
    this.#ess = await startEdgeSyncService(
      buildConfig(
        {},
        {},
        {
          NodeType: 'ESS',
          OrgID: o.org,
          DestinationType: o.destinationType,
          DestinationID: this.spec.id,
          NodeSecret: this.spec.secret,
          NodeProperties: `site=${this.spec.site},simulated=true`,
          BrokerAddress: o.broker,
          PersistenceRootPath: path.join(o.dir, this.spec.id),
          ListeningAddress: '127.0.0.1',
          ListeningPort: 0,
          Plugins: 'ems',
          ...(o.signingKey === undefined ? {} : { SigningKey: o.signingKey })
        }
      ),
      o.log.child({ edge: this.spec.id })
    )
  }

  get restUrl (): string | undefined {
    return this.#ess?.restUrl
  }

  /** Advances the site to `now` (simulated ms since the epoch) and updates every register. */
  tick (now: number): void {
    const dt = Math.max(0, (now - this.#lastTick) / 1000)
    this.#lastTick = now
    const d = new Date(now)
    const r = this.model.step(d.getHours() + d.getMinutes() / 60 + d.getSeconds() / 3600, dt)
    this.last = r
    const v = this.devices
    v.grid.set('ActivePower', r.grid)
    v.grid.set('Voltage', 230 + Math.round(r.grid / 2000))
    v.grid.set('EnergyImport', Math.round(r.energy.gridImport))
    v.grid.set('EnergyExport', Math.round(r.energy.gridExport))
    v.pv_west.set('ActivePower', r.pvWest)
    v.pv_west.set('Energy', Math.round(r.energy.pvWest))
    v.pv_east.set('ActivePower', r.pvEast)
    v.pv_east.set('Energy', Math.round(r.energy.pvEast))
    v.consumption.set('ActivePower', r.consumption)
    v.consumption.set('Energy', Math.round(r.energy.consumption))
    v.bms_main.set('ActivePower', r.battery)
    v.bms_main.set('Soc', Math.round(r.soc))
    v.bms_main.set('Temperature', 25 + Math.abs(r.battery) / 1000)
  }

  async close (): Promise<void> {
    await this.#ess?.close()
    for (const d of DEVICES) await this.devices[d].close()
  }
}
