/**
 * Storage benchmark, per backend (local; mongo on FerretDB): puts/s and gets/s over 10,000 small
 * objects, delivery-record bulk upserts for a 10,000-destination fan-out, and a 256 MiB data put
 * plus ranged reads with the process's peak RSS. Each backend runs in its own child process so
 * peak RSS is its own.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { openLocalStore, openMongoStore, type Store } from '../src/storage/index.js'
import { findBinary } from '../harness/find-binary.js'
import { ferretBackend, startFerretDb } from '../harness/ferretdb.js'
import { printTable, writeResult } from './lib/report.js'
import { forEachLimit } from '../src/common/concurrency.js'

// FerretDB v1 on SQLite slows down as a collection grows (about 110 puts/s at 500 objects, 35/s at
// 2,000) and runs conditional updates slowly, so its run is smaller (STORE_OBJECTS,
// STORE_DESTINATIONS, STORE_BIG_BYTES override). It is a wire-compatible test server: its figures
// say nothing about MongoDB's speed.
const OBJECTS_BY_BACKEND: Record<string, number> = { local: 10_000, mongo: 2_000 }
let OBJECTS = 10_000
const DESTINATIONS_BY_BACKEND: Record<string, number> = { local: 10_000, mongo: 100 }
let DESTINATIONS = 10_000
const BIG_BY_BACKEND: Record<string, number> = { local: 256 * 1024 * 1024, mongo: 32 * 1024 * 1024 }
let BIG = 256 * 1024 * 1024
const CONCURRENCY = Number(process.env.STORE_CONCURRENCY ?? 64)

async function pool (n: number, conc: number, fn: (i: number) => Promise<void>): Promise<void> {
  await forEachLimit(Array.from({ length: n }, (_, i) => i), conc, fn)
}

async function * bytes (size: number): AsyncGenerator<Buffer> {
  const chunk = Buffer.alloc(1024 * 1024, 7)
  for (let off = 0; off < size; off += chunk.length) yield chunk.subarray(0, Math.min(chunk.length, size - off))
}

function phase (name: string, t0: number): void {
  process.stderr.write(`  ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
}

async function measure (store: Store): Promise<Record<string, number>> {
  const key = (i: number): { orgId: string, objectType: string, objectId: string } => ({ orgId: 'bench', objectType: 'conf', objectId: `o${i}` })
  let t0 = performance.now()
  await pool(OBJECTS, CONCURRENCY, async (i) => {
    await store.objects.put(key(i), () => ({ meta: { objectID: `o${i}`, objectType: 'conf', destinationOrgID: 'bench', dataID: 0, objectSize: 0, description: 'x'.repeat(100) }, status: 'ready' }))
  })
  const putsPerS = OBJECTS / ((performance.now() - t0) / 1000)
  phase(`${OBJECTS} puts`, t0)
  t0 = performance.now()
  await pool(OBJECTS, CONCURRENCY, async (i) => { await store.objects.get(key(i)) })
  const getsPerS = OBJECTS / ((performance.now() - t0) / 1000)
  phase(`${OBJECTS} gets`, t0)
  const deliveries = (status: 'delivering' | 'consumed'): Parameters<Store['deliveries']['upsertMany']>[0] => Array.from({ length: DESTINATIONS }, (_, i) => ({ orgId: 'bench', objectType: 'conf', objectId: 'o1', destinationType: 'edge', destinationId: `e${i}`, instanceId: 1, status }))
  t0 = performance.now()
  await store.deliveries.upsertMany(deliveries('delivering'))
  const insertS = (performance.now() - t0) / 1000
  phase('delivery insert batch', t0)
  t0 = performance.now()
  await store.deliveries.upsertMany(deliveries('consumed'))
  const updateS = (performance.now() - t0) / 1000
  t0 = performance.now()
  const blob = await store.blobs.write(bytes(BIG))
  const bigPutS = (performance.now() - t0) / 1000
  phase('big put', t0)
  t0 = performance.now()
  let read = 0
  for (let i = 0; i < 64; i++) {
    const start = Math.floor((BIG - 65536) * (i / 64))
    for await (const c of (await store.blobs.read(blob.ref, { start, end: start + 65535 }))!) read += (c as Buffer).length
  }
  const rangedReadMs = (performance.now() - t0) / 64
  t0 = performance.now()
  for await (const c of (await store.blobs.read(blob.ref))!) read += (c as Buffer).length
  const bigReadS = (performance.now() - t0) / 1000
  if (read !== 64 * 65536 + BIG) throw new Error(`Read ${read} bytes, expected ${64 * 65536 + BIG}`)
  return {
    objects: OBJECTS,
    destinations: DESTINATIONS,
    bigMiB: BIG / 1048576,
    objectPutsPerS: Math.round(putsPerS),
    objectGetsPerS: Math.round(getsPerS),
    deliveryInsertsPerS: Math.round(DESTINATIONS / insertS),
    deliveryUpdatesPerS: Math.round(DESTINATIONS / updateS),
    bigPutMBps: Math.round(BIG / 1048576 / bigPutS),
    bigReadMBps: Math.round(BIG / 1048576 / bigReadS),
    rangedRead64KiBMs: Number(rangedReadMs.toFixed(2)),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024)
  }
}

async function child (backend: string): Promise<void> {
  OBJECTS = Number(process.env.STORE_OBJECTS ?? OBJECTS_BY_BACKEND[backend] ?? 10_000)
  DESTINATIONS = Number(process.env.STORE_DESTINATIONS ?? DESTINATIONS_BY_BACKEND[backend] ?? 10_000)
  BIG = Number(process.env.STORE_BIG_BYTES ?? BIG_BY_BACKEND[backend] ?? BIG)
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-bench-'))
  let store: Store
  let stopDb = async (): Promise<void> => {}
  if (backend === 'local') {
    store = await openLocalStore(dir, { historyRetention: 2 })
  } else {
    const bin = findBinary('ferretdb')
    if (bin === undefined) throw new Error('ferretdb not found: run .ci/install-ferretdb.sh')
    const db = await startFerretDb(bin, { backend: ferretBackend() })
    stopDb = db.stop
    store = await openMongoStore({ uri: db.uri + (process.env.STORE_MONGO_URI_OPTIONS ?? '').replace(/^\?/, '&'), dbName: 'bench', historyRetention: 2 })
  }
  try {
    process.stdout.write(JSON.stringify(await measure(store)) + '\n')
  } finally {
    await store.close()
    await stopDb()
    await rm(dir, { recursive: true, force: true })
  }
}

export async function runStoreBench (backends: string[]): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  for (const backend of backends) {
    process.stderr.write(`store bench: ${backend}...\n`)
    // A backend that does not finish in time is reported as such instead of hanging the suite.
    const limitMs = Number(process.env.STORE_CHILD_TIMEOUT_MS ?? 300_000)
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', backend], { stdio: ['ignore', 'pipe', 'inherit'] })
      const timer = setTimeout(() => { c.kill('SIGKILL') }, limitMs)
      let text = ''
      c.stdout.on('data', (d: Buffer) => { text += d.toString() })
      c.on('exit', (code, signal) => {
        clearTimeout(timer)
        if (signal === 'SIGKILL') resolve(JSON.stringify({ error: `did not finish within ${limitMs / 1000} s (phases above)` }))
        else if (code === 0) resolve(text)
        else reject(new Error(`${backend} bench exited with ${String(code)}`))
      })
    })
    rows.push({ backend: backend === 'mongo' ? 'mongo (FerretDB/SQLite)' : backend, ...JSON.parse(out) as Record<string, number | string> })
  }
  printTable(`store: small objects (puts and gets ${CONCURRENCY} in flight), one delivery batch per fan-out, one big blob (sizes per row)`, rows)
  await writeResult('store', { putConcurrency: CONCURRENCY, rows })
}

if (process.argv[2] === '--child') await child(process.argv[3] ?? 'local')
