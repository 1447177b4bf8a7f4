/** The real executables: bad config exits 2 naming every bad key; a good one serves and stops on SIGTERM. */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const css = fileURLToPath(new URL('../../cmd/css.ts', import.meta.url))

function run (env: Record<string, string>, onReady?: (line: string, kill: () => void) => void): Promise<{ code: number | null, out: string, err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, css], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (onReady !== undefined && out.includes('ready')) onReady(out, () => child.kill('SIGTERM'))
    })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('exit', (code) => resolve({ code, out, err }))
  })
}

t.test('sync-css - a bad config exits 2 and names every bad key', async (t) => {
  const r = await run({ LISTENING_PORT: 'abc', STORAGE_PROVIDER: 'floppy', SYNC_CONF: '/nonexistent' })
  t.equal(r.code, 2)
  t.match(r.err, /ListeningPort/)
  t.match(r.err, /StorageProvider/)
})

t.test('sync-css - RequireTls from the environment without a certificate exits 2 at once', async (t) => {
  const r = await run({ REQUIRE_TLS: 'true', SYNC_CONF: '/nonexistent', LISTENING_PORT: '0', MQTT_LISTENING_PORT: '0' })
  t.equal(r.code, 2, 'a config error (2), not a start that fails later (1)')
  t.match(r.err, /ServerCertificate/)
})

t.test('sync-ess - RequireTls with a plain mqtt:// broker exits 2 and never connects', async (t) => {
  const ess = fileURLToPath(new URL('../../cmd/ess.ts', import.meta.url))
  const r = await new Promise<{ code: number | null, err: string }>((resolve) => {
    const env = { ...process.env, SYNC_CONF: '/nonexistent', REQUIRE_TLS: 'true', ORG_ID: 'o', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'e', NODE_SECRET: 's', BROKER_ADDRESS: 'mqtt://127.0.0.1:1' }
    const child = spawn(process.execPath, [...process.execArgv, ess], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.on('exit', (code) => { resolve({ code, err }) })
  })
  t.equal(r.code, 2)
  t.match(r.err, /BrokerAddress/)
})

t.test('sync-css - starts on embedded defaults, answers health, stops cleanly on SIGTERM', async (t) => {
  const dir = t.testdir()
  let health = 0
  const r = await run({ PERSISTENCE_ROOT_PATH: dir, LISTENING_PORT: '0', MQTT_LISTENING_PORT: '0', SYNC_CONF: '/nonexistent' }, (line, kill) => {
    const url = /REST (\S+)/.exec(line)?.[1] ?? ''
    fetch(`${url}/healthz`).then((res) => { health = res.status; kill() }, kill)
  })
  t.equal(health, 200)
  t.equal(r.code, 0, 'clean exit')
  t.match(r.out, /edgesync CSS ready: REST http:\/\/127\.0\.0\.1:\d+ {2}MQTT mqtt:\/\/127\.0\.0\.1:\d+/)
  t.notMatch(r.err, /"secret"|SYNC_ERR_INTERNAL/, 'no secret in the log')
})
