/**
 * A worker process of the EMS benchmark: real ESS instances (with the EMS plugin) and, for each,
 * its simulated Modbus devices (grid meter, battery, PV). Reports every battery setpoint write.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { buildConfig } from '../src/common/config/load.js'
import { silentLogger } from '../src/common/log.js'
import { SimulatedDevice } from '../src/ems/edge/modbus.js'
import { loadProfiles } from '../src/ems/common/profiles.js'
import { startEss as startEdgeSyncService, type EssHandle } from '../src/app/ess.js'

interface Start { cmd: 'start', broker: string, org: string, edges: Array<{ id: string, secret: string, site: string }> }

const handles: EssHandle[] = []
const devices: SimulatedDevice[] = []
let dir = ''

async function start (m: Start): Promise<void> {
  dir = await mkdtemp(path.join(tmpdir(), 'edgesync-ems-bench-'))
  const profiles = loadProfiles()
  const ports: Record<string, { meter: number, battery: number, pv: number }> = {}
  for (const e of m.edges) {
    const grid = new SimulatedDevice(profiles.get('grid_meter')!)
    const battery = new SimulatedDevice(profiles.get('battery')!)
    const pv = new SimulatedDevice(profiles.get('pv_inverter')!)
    grid.set('ActivePower', 60000)
    battery.set('Soc', 80)
    pv.set('ActivePower', 3000)
    battery.onWrite = (channel, value) => { if (channel === 'SetPower') process.send?.({ cmd: 'setpoint', edge: e.id, value, at: Date.now() }) }
    const p = { meter: await grid.listen('127.0.0.1'), battery: await battery.listen('127.0.0.1'), pv: await pv.listen('127.0.0.1') }
    devices.push(grid, battery, pv)
    ports[e.id] = p
    handles.push(await startEdgeSyncService(buildConfig({}, {}, {
      NodeType: 'ESS',
      OrgID: m.org,
      DestinationType: 'edge',
      DestinationID: e.id,
      NodeSecret: e.secret,
      NodeProperties: `site=${e.site}`,
      BrokerAddress: m.broker,
      PersistenceRootPath: dir,
      ListeningPort: 0,
      AdminKey: 'app',
      AdminSecret: 'app-secret',
      Plugins: 'ems',
      HeartbeatIntervalSeconds: 5
    }), silentLogger))
  }
  process.send?.({ cmd: 'started', ports })
}

process.on('message', (m: Start | { cmd: 'stop' }) => {
  if (m.cmd === 'start') {
    start(m).catch((err: unknown) => { process.send?.({ cmd: 'error', message: (err as Error).message }) })
    return
  }
  void (async () => {
    for (const h of handles) await h.close()
    for (const d of devices) await d.close()
    await rm(dir, { recursive: true, force: true })
    process.exit(0)
  })()
})
