/**
 * Protocol fuzzing from an enrolled node: a few thousand seeded messages of every kind (valid
 * shapes naming objects it may and may not see, mutated fields, truncated JSON, random bytes,
 * chunk frames) on its own up topic. Afterwards the CSS is alive, every object stored before the
 * run is byte-for-byte intact (sha256 of metadata and data), the fuzzer got no delivery record,
 * data or "gone" for anything not addressed to it, and no object of an owned type exists.
 * Replay a failure with FUZZ_SEED=<seed printed in the test name>.
 */
import { createHash } from 'node:crypto'
import path from 'node:path'
import fc from 'fast-check'
import t from 'tap'
import { readBlob } from '../../src/storage/index.js'
import { ADMIN, basic, enroll, startCss, waitFor } from '../helpers/cluster.js'
import { connectRawNode } from '../helpers/raw-node.js'

const SEED = Number(process.env.FUZZ_SEED ?? 20261130)
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000)

const css = await startCss(t, path.join(t.testdir(), 'css'), { MaxInlineDataSize: 2048, ChunkSize: 4096 })
const admin = { authorization: basic(ADMIN) }
const fzSecret = await enroll(css, 'org1', 'edge', 'fz')
await enroll(css, 'org1', 'edge', 'n1')

// Objects the fuzzer may see (addressed to it) and may not (n1 only, another type, another org).
const fixtures: Array<{ org: string, id: string, meta: Record<string, unknown>, size: number, visible: boolean }> = [
  { org: 'org1', id: 'mine-small', meta: { destinationType: 'edge' }, size: 100, visible: true },
  { org: 'org1', id: 'mine-big', meta: { destinationsList: ['edge:fz', 'edge:n1'] }, size: 20_000, visible: true },
  { org: 'org1', id: 'n1-small', meta: { destinationsList: ['edge:n1'] }, size: 100, visible: false },
  { org: 'org1', id: 'n1-big', meta: { destinationsList: ['edge:n1'] }, size: 20_000, visible: false },
  { org: 'org1', id: 'n1-auto', meta: { destinationsList: ['edge:n1'], autodelete: true }, size: 10, visible: false },
  { org: 'org1', id: 'gw-only', meta: { destinationType: 'gateway' }, size: 100, visible: false },
  { org: 'org2', id: 'other-org', meta: { destinationType: 'edge' }, size: 100, visible: false }
]
for (const f of fixtures) {
  const data = Buffer.alloc(f.size, f.id)
  const r = await fetch(`${css.restUrl}/api/v1/objects/${f.org}/conf/${f.id}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: f.meta, data: data.toString('base64') }) })
  if (r.status !== 204) throw new Error(`fixture ${f.id}: ${r.status}`)
}

async function fingerprint (): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const f of fixtures) {
    const o = await css.store.objects.get({ orgId: f.org, objectType: 'conf', objectId: f.id })
    const data = o?.dataRef === undefined ? undefined : await readBlob(css.store.blobs, o.dataRef)
    out.set(f.id, createHash('sha256').update(JSON.stringify(o?.meta ?? null)).update(data ?? Buffer.alloc(0)).digest('hex'))
  }
  return out
}

const ids = fc.constantFrom(...fixtures.map((f) => f.id), 'no-such', 'x'.repeat(129), '')
const types = fc.constantFrom('conf', 'ems-config', '_ems-layer', '_x', 'telemetry', '')
const instances = fc.oneof(fc.constantFrom(1, 2, 3), fc.integer({ min: -2, max: 1e9 }))
const ref = fc.record({ objectType: types, objectId: ids, instanceId: instances })
const state = fc.constantFrom('received', 'consumed', 'deleted', 'error', 'bogus')
const kinds = {
  register: fc.record({ kind: fc.constant('register'), properties: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), codeVersion: fc.string({ maxLength: 8 }), holdings: fc.array(fc.record({ objectType: types, objectId: ids, instanceId: instances, state }), { maxLength: 6 }) }),
  heartbeat: fc.record({ kind: fc.constant('heartbeat'), errors: fc.integer({ min: -1, max: 5 }), status: fc.option(fc.dictionary(fc.string({ maxLength: 6 }), fc.object({ maxDepth: 1 }), { maxKeys: 2 }), { nil: undefined }) }),
  ack: fc.record({ kind: fc.constant('ack'), state, message: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }) }).chain((a) => ref.map((r) => ({ ...a, ...r }))),
  fetch: fc.record({ kind: fc.constant('fetch'), offset: fc.integer({ min: -1, max: 30_000 }), length: fc.integer({ min: 0, max: 5_000_000 }) }).chain((a) => ref.map((r) => ({ ...a, ...r }))),
  progress: fc.record({ kind: fc.constant('progress'), bytes: fc.integer({ min: -1, max: 1e6 }) }).chain((a) => ref.map((r) => ({ ...a, ...r }))),
  busy: fc.record({ kind: fc.constant('busy'), retryAfterMs: fc.integer({ min: -1, max: 700_000 }) }).chain((a) => ref.map((r) => ({ ...a, ...r }))),
  gone: fc.record({ kind: fc.constant('gone') }).chain((a) => ref.map((r) => ({ ...a, ...r }))),
  offer: fc.record({
    kind: fc.constant('offer'),
    meta: fc.record({ objectType: types, objectID: ids, instanceID: instances, dataID: fc.constantFrom(0, 1), objectSize: fc.constantFrom(0, 4, 100, 9999), public: fc.boolean(), destinationsList: fc.constant(['edge:n1']), originID: fc.constant('n1') }),
    data: fc.option(fc.constantFrom('aGVsbG8=', 'AAAA', 'not base64', ''), { nil: undefined })
  })
}
const envelope = fc.oneof(...Object.values(kinds)).chain((m) => fc.constantFrom(1, 1, 1, 2, '1').map((v) => ({ v, ...m } as Record<string, unknown>)))
const payload: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 8, arbitrary: envelope.map((m) => Buffer.from(JSON.stringify(m))) },
  { weight: 1, arbitrary: envelope.chain((m) => fc.nat().map((n) => { const b = Buffer.from(JSON.stringify(m)); return b.subarray(0, n % b.length) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) },
  { weight: 1, arbitrary: fc.tuple(ref, fc.nat(4096), fc.uint8Array({ maxLength: 64 })).map(([r, off, data]) => chunkFrame(r, off, Buffer.from(data))) }
)

function chunkFrame (r: { objectType: string, objectId: string, instanceId: number }, offset: number, data: Buffer): Buffer {
  const header = Buffer.from(JSON.stringify({ v: 1, kind: 'chunk', ...r, offset, sha256: createHash('sha256').update(data).digest('hex') }))
  const prefix = Buffer.alloc(5)
  prefix.writeUInt32BE(header.length, 1)
  return Buffer.concat([prefix, header, data])
}

t.test(`protocol fuzz: ${RUNS} messages from an enrolled node (seed ${SEED})`, async (t) => {
  const before = await fingerprint()
  const fz = await connectRawNode({ url: css.mqttUrls[0] ?? '', org: 'org1', type: 'edge', id: 'fz', secret: fzSecret })
  t.teardown(() => fz.close())
  const messages = fc.sample(payload, { seed: SEED, numRuns: RUNS })
  for (let i = 0; i < messages.length; i += 25) {
    await Promise.all(messages.slice(i, i + 25).map(async (m) => { await fz.up(m) }))
  }
  // Barrier: a register answered after everything else it sent.
  await fz.up({ v: 1, kind: 'register', properties: {}, codeVersion: 'end', holdings: [] })
  await waitFor('final register answered', async () => fz.seen.find((m) => m.kind === 'registered' && fz.seen.indexOf(m) > 0) ?? undefined, 30_000)

  const health = await fetch(`${css.restUrl}/api/v1/health`, { headers: admin })
  t.equal(health.status, 200, 'the CSS is alive')
  t.same(await fingerprint(), before, 'every object stored before the run is intact (sha256 of metadata and data)')
  for (const f of fixtures.filter((x) => !x.visible && x.org === 'org1')) {
    const d = await css.store.deliveries.get({ orgId: 'org1', objectType: 'conf', objectId: f.id }, { orgId: 'org1', destinationType: 'edge', destinationId: 'fz' })
    t.equal(d, undefined, `no delivery record for fz on ${f.id}`)
  }
  // (The fuzzer may create objects of its own with these names in other types: those are its.)
  const hidden = fixtures.filter((x) => !x.visible && x.org === 'org1').map((x) => `"objectType":"conf","objectId":"${x.id}"`)
  const leaked = fz.seen.filter((m) => hidden.some((h) => m.head.includes(h)))
  t.same(leaked.map((m) => `${m.kind ?? '?'} ${m.head.slice(0, 80)}`), [], 'nothing about objects not addressed to fz reached it')
  for (const type of ['ems-config', '_ems-layer', '_x']) {
    const page = await css.store.objects.list({ orgId: 'org1', objectType: type, limit: 10 })
    t.same(page.items.map((o) => o.key.objectId), [], `no object of the owned type ${type}`)
  }
  const c = css.sync.counters
  t.ok(c.dropped > 0 && Object.values(c.refused).reduce((a, b) => a + (b ?? 0), 0) > 0, `malformed dropped (${c.dropped}) and unauthorized refused (${JSON.stringify(c.refused)})`)
})
