/**
 * Crash safety of the local store: a child process writes in a loop and reports each write once it
 * is acknowledged; we SIGKILL it mid-loop, reopen the store and expect every acknowledged write.
 */
import { spawn } from 'node:child_process'
import t from 'tap'
import { openLocalStore } from '../../../src/storage/index.js'

const writer = `
import { openLocalStore } from ${JSON.stringify(new URL('../../../src/storage/index.ts', import.meta.url).pathname)}
const s = await openLocalStore(process.env.CRASH_DIR, { historyRetention: 3 })
let i = 0
for (;;) {
  const k = { orgId: 'org1', objectType: 'conf', objectId: 'o' + (i % 50) }
  const o = await s.objects.put(k, () => ({ meta: { objectID: k.objectId, objectType: 'conf', destinationOrgID: 'org1', dataID: 0, objectSize: 0, version: String(i) }, status: 'ready' }))
  await s.deliveries.upsertMany([{ orgId: 'org1', objectType: 'conf', objectId: k.objectId, destinationType: 'edge', destinationId: 'n' + i, instanceId: o.meta.instanceID, status: 'delivered' }])
  process.stdout.write(i + ' ' + k.objectId + ' ' + o.meta.instanceID + '\\n')
  i++
}
`

t.test('local-store - every acknowledged write survives SIGKILL mid-write', async (t) => {
  const dir = t.testdir()
  const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', writer], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CRASH_DIR: dir } })
  const acked: Array<{ i: number, objectId: string, instanceId: number }> = []
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    const lines = buf.split('\n')
    buf = lines.pop() ?? ''
    for (const l of lines) {
      const [i, objectId, inst] = l.split(' ')
      acked.push({ i: Number(i), objectId: objectId ?? '', instanceId: Number(inst) })
    }
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => { if (acked.length >= 300) { clearInterval(timer); resolve() } }, 5)
    child.once('exit', (code) => { clearInterval(timer); reject(new Error(`writer exited early with ${String(code)}`)) })
  })
  child.kill('SIGKILL')
  await new Promise((resolve) => child.once('exit', resolve))
  t.ok(acked.length >= 300, `${acked.length} writes acknowledged before the kill`)

  const s = await openLocalStore(dir, { historyRetention: 3 })
  t.teardown(() => s.close())
  const latest = new Map<string, number>()
  for (const a of acked) latest.set(a.objectId, a.instanceId)
  let missing = 0
  for (const [objectId, inst] of latest) {
    const o = await s.objects.get({ orgId: 'org1', objectType: 'conf', objectId })
    if (o === undefined || o.meta.instanceID < inst) missing++
  }
  t.equal(missing, 0, 'every object is at least at its last acknowledged instance')
  let lostDeliveries = 0
  for (const a of acked) {
    const d = await s.deliveries.get({ orgId: 'org1', objectType: 'conf', objectId: a.objectId }, { orgId: 'org1', destinationType: 'edge', destinationId: `n${a.i}` })
    if (d === undefined) lostDeliveries++
  }
  t.equal(lostDeliveries, 0, 'every acknowledged delivery record is there')
  const next = await s.objects.put({ orgId: 'org1', objectType: 'conf', objectId: 'o0' }, () => ({ meta: { objectID: 'o0', objectType: 'conf', destinationOrgID: 'org1', dataID: 0, objectSize: 0 }, status: 'ready' }))
  t.ok(next.meta.instanceID > (latest.get('o0') ?? 0), 'instance IDs keep increasing after the crash')
})
