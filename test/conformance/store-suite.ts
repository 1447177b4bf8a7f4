/**
 * The storage contract, stated as tests. Every backend runs this same suite through a factory
 * (memory is the reference). Glossary: "instance" = one version of an object, "blob" = object data.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Test } from 'tap'
import type { DeliveryUpdate, ObjectKey, ObjectMetadata } from '../../src/common/model.js'
import { storeVerifiedFile, type ObjectDraft, type Store, type StoreOptions } from '../../src/storage/index.js'
import { collect, expectedBytes, generateBytes } from '../helpers/bytes.js'

export type MakeStore = (opts: StoreOptions) => Promise<Store>

const key = (objectId: string, objectType = 'conf'): ObjectKey => ({ orgId: 'org1', objectType, objectId })

function draft (k: ObjectKey, extra: Partial<ObjectMetadata> = {}): ObjectDraft {
  return { objectID: k.objectId, objectType: k.objectType, destinationOrgID: k.orgId, dataID: 0, objectSize: 0, ...extra }
}

async function putSimple (s: Store, k: ObjectKey, extra: Partial<ObjectMetadata> = {}, dataRef?: string): Promise<number> {
  const o = await s.objects.put(k, () => ({ meta: draft(k, extra), status: 'ready', ...(dataRef === undefined ? {} : { dataRef }) }))
  return o.meta.instanceID
}

function delivery (objectId: string, destinationId: string, instanceId: number, status: DeliveryUpdate['status']): DeliveryUpdate {
  return { orgId: 'org1', objectType: 'conf', objectId, destinationType: 'edge', destinationId, instanceId, status }
}

export function storeConformance (t: Test, name: string, make: MakeStore): void {
  const open = async (tt: Test, historyRetention = 5, keepAllHistory: string[] = []): Promise<Store> => {
    const s = await make({ historyRetention, keepAllHistory })
    tt.teardown(() => s.close())
    return s
  }

  t.test(`${name} - put then get returns the metadata with a server-assigned instance`, async (tt) => {
    const s = await open(tt)
    const k = key('a')
    const o = await s.objects.put(k, (cur) => {
      tt.equal(cur, undefined, 'no current instance on first put')
      return { meta: draft(k, { version: '1.0', description: 'first' }), status: 'ready' }
    })
    tt.ok(o.meta.instanceID > 0)
    const got = await s.objects.get(k)
    tt.equal(got?.meta.version, '1.0')
    tt.equal(got?.meta.description, 'first')
    tt.equal(got?.meta.instanceID, o.meta.instanceID)
    tt.equal(got?.status, 'ready')
    tt.ok(got?.meta.created !== undefined && got.meta.lastUpdate !== undefined, 'timestamps set')
    tt.equal(await s.objects.get(key('missing')), undefined, 'missing object is undefined, not an error')
  })

  t.test(`${name} - instanceID strictly increases, also across delete and re-create`, async (tt) => {
    const s = await open(tt)
    const k = key('b')
    const i1 = await putSimple(s, k)
    const i2 = await putSimple(s, k)
    await putSimple(s, key('other'))
    await s.objects.remove(k)
    tt.equal(await s.objects.get(k), undefined)
    const i3 = await putSimple(s, k)
    tt.ok(i1 < i2 && i2 < i3, `${i1} < ${i2} < ${i3}`)
  })

  t.test(`${name} - expectInstanceId guards against stale writes`, async (tt) => {
    const s = await open(tt)
    const k = key('c')
    await tt.rejects(s.objects.put(k, () => ({ meta: draft(k), status: 'ready' }), { expectInstanceId: 7 }), { code: 'SYNC_ERR_PRECONDITION_FAILED' })
    const i1 = (await s.objects.put(k, () => ({ meta: draft(k), status: 'ready' }), { expectInstanceId: 0 })).meta.instanceID
    await tt.rejects(s.objects.put(k, () => ({ meta: draft(k), status: 'ready' }), { expectInstanceId: 0 }), { code: 'SYNC_ERR_PRECONDITION_FAILED' })
    const i2 = (await s.objects.put(k, () => ({ meta: draft(k), status: 'ready' }), { expectInstanceId: i1 })).meta.instanceID
    tt.ok(i2 > i1)
    await tt.rejects(s.objects.setStatus(k, 'notReady', i1), { code: 'SYNC_ERR_PRECONDITION_FAILED' })
    const st = await s.objects.setStatus(k, 'notReady', i2)
    tt.equal(st?.status, 'notReady')
    tt.equal((await s.objects.get(k))?.meta.instanceID, i2, 'setStatus makes no new instance')
    tt.equal((await s.objects.markPolicyReceived(k))?.policyReceived, true)
    tt.equal((await s.objects.get(k))?.meta.instanceID, i2, 'nor does a policy mark')
    tt.equal((await s.objects.get(k))?.policyReceived, true, 'the mark is stored')
    const i3 = (await s.objects.put(k, () => ({ meta: draft(k), status: 'ready' }))).meta.instanceID
    tt.equal((await s.objects.get(k))?.policyReceived, undefined, `a new instance (${i3}) starts unmarked`)
    tt.equal(await s.objects.markPolicyReceived(key('absent')), undefined)
  })

  t.test(`${name} - a replica keeps the instanceID it is given, and only newer ones`, async (tt) => {
    const s = await open(tt)
    const k = key('replica')
    const o = await s.objects.put(k, () => ({ meta: draft(k), status: 'completelyReceived' }), { instanceId: 40 })
    tt.equal(o.meta.instanceID, 40)
    await tt.rejects(s.objects.put(k, () => ({ meta: draft(k), status: 'completelyReceived' }), { instanceId: 40 }), { code: 'SYNC_ERR_CONFLICT' })
    tt.equal((await s.objects.put(k, () => ({ meta: draft(k), status: 'completelyReceived' }), { instanceId: 45 })).meta.instanceID, 45)
    tt.ok((await putSimple(s, k)) > 45, 'assigned instances continue above')
  })

  t.test(`${name} - history keeps the configured number of instances, newest first`, async (tt) => {
    const s = await open(tt, 3)
    const k = key('d')
    const ids: number[] = []
    for (let v = 1; v <= 5; v++) ids.push(await putSimple(s, k, { version: String(v) }))
    const h = await s.objects.history(k)
    tt.same(h.map((o) => o.meta.version), ['5', '4', '3'])
    tt.same(h.map((o) => o.meta.instanceID), [ids[4], ids[3], ids[2]])
    tt.equal((await s.objects.getInstance(k, ids[3] as number))?.meta.version, '4')
    tt.equal(await s.objects.getInstance(k, ids[0] as number), undefined, 'pruned instance is gone')
  })

  t.test(`${name} - types listed in keepAllHistory keep every instance`, async (tt) => {
    const s = await open(tt, 2, ['audited'])
    const k = { orgId: 'org1', objectType: 'audited', objectId: 'x' }
    for (let v = 1; v <= 6; v++) await s.objects.put(k, () => ({ meta: { objectID: 'x', objectType: 'audited', destinationOrgID: 'org1', dataID: 0, objectSize: 0, version: String(v) }, status: 'ready' }))
    tt.same((await s.objects.history(k)).map((o) => o.meta.version), ['6', '5', '4', '3', '2', '1'])
  })

  t.test(`${name} - pruning history releases data no retained instance uses`, async (tt) => {
    const s = await open(tt, 2)
    const k = key('e')
    const b1 = await s.blobs.write(generateBytes(1000))
    const b2 = await s.blobs.write(generateBytes(2000))
    await putSimple(s, k, {}, b1.ref)
    await putSimple(s, k, {}, b1.ref) // same data, new metadata
    await putSimple(s, k, {}, b2.ref)
    tt.equal(await s.blobs.size(b1.ref), 1000, 'still referenced by a retained instance')
    await putSimple(s, k, {}, b2.ref)
    tt.equal(await s.blobs.size(b1.ref), undefined, 'released after its last instance was pruned')
    const freed = await s.objects.remove(k)
    tt.same(freed, [b2.ref], 'remove returns the refs it freed')
  })

  t.test(`${name} - list filters and pages with an opaque cursor`, async (tt) => {
    const s = await open(tt)
    for (let i = 0; i < 25; i++) await putSimple(s, key(`o${String(i).padStart(2, '0')}`), i % 5 === 0 ? { deleted: true } : {})
    await putSimple(s, key('x1', 'other'))
    await putSimple(s, { orgId: 'org2', objectType: 'conf', objectId: 'foreign' })
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const p = await s.objects.list({ orgId: 'org1', objectType: 'conf', limit: 10, ...(cursor === undefined ? {} : { cursor }) })
      seen.push(...p.items.map((o) => o.key.objectId))
      cursor = p.next
      pages++
    } while (cursor !== undefined)
    tt.equal(pages, 3)
    tt.same(seen, Array.from({ length: 25 }, (_, i) => `o${String(i).padStart(2, '0')}`), 'every object once, in order')
    tt.equal((await s.objects.list({ orgId: 'org1', deleted: true })).items.length, 5)
    tt.equal((await s.objects.list({ orgId: 'org1' })).items.length, 26, 'all types of the org, no other org')
    tt.same(await s.objects.orgs(), ['org1', 'org2'], 'orgs with objects')
    await s.objects.setStatus(key('o01'), 'notReady')
    tt.same((await s.objects.list({ orgId: 'org1', statuses: ['notReady'] })).items.map((o) => o.key.objectId), ['o01'])
    await tt.rejects(s.objects.list({ orgId: 'org1', cursor: '%%%' }), { code: 'SYNC_ERR_VALIDATION' })
  })

  t.test(`${name} - parallel writers to one object never collide`, async (tt) => {
    const s = await open(tt, 50)
    const k = key('hot')
    const writers = 20
    const results = await Promise.all(Array.from({ length: writers }, async (_, i) =>
      await s.objects.put(k, (cur) => ({ meta: draft(k, { version: String((Number(cur?.meta.version ?? '0')) + 1), description: `w${i}` }), status: 'ready' }))))
    const ids = results.map((r) => r.meta.instanceID)
    tt.equal(new Set(ids).size, writers, 'every write got its own instanceID')
    const cur = await s.objects.get(k)
    tt.equal(cur?.meta.instanceID, Math.max(...ids), 'current is the highest instance')
    tt.equal(cur?.meta.version, String(writers), 'each build saw the instance before it (no lost update)')
    tt.equal((await s.objects.history(k)).length, writers)
  })

  t.test(`${name} - a verified file becomes a blob (adopted by rename where the store can)`, async (tt) => {
    const s = await open(tt)
    const file = path.join(tt.testdir(), 'part')
    const data = expectedBytes(0, 99_999)
    await writeFile(file, data)
    const info = await storeVerifiedFile(s.blobs, file, { size: data.length, sha256: createHash('sha256').update(data).digest('hex') })
    tt.same(await collect((await s.blobs.read(info.ref))!), data, 'the data reads back')
    tt.equal(info.size, data.length)
    tt.equal(existsSync(file), s.blobs.adopt === undefined, s.blobs.adopt === undefined ? 'streamed in: the caller still owns the file' : 'adopted: moved, not copied')
  })

  t.test(`${name} - blobs stream in and out, ranged reads are byte-exact`, async (tt) => {
    const s = await open(tt)
    const size = 3 * 255 * 1024 + 12345
    const info = await s.blobs.write(generateBytes(size, 70_001))
    tt.equal(info.size, size)
    tt.equal(info.sha256.length, 64)
    tt.equal(await s.blobs.size(info.ref), size)
    const whole = await collect((await s.blobs.read(info.ref))!)
    tt.ok(whole.equals(expectedBytes(0, size - 1)), 'whole read matches')
    for (const [a, b] of [[0, 0], [255 * 1024 - 1, 255 * 1024], [1000, 600_000], [size - 10, size - 1], [size - 5, size + 100]] as const) {
      const got = await collect((await s.blobs.read(info.ref, { start: a, end: b }))!)
      tt.ok(got.equals(expectedBytes(a, Math.min(b, size - 1))), `range ${a}-${b}`)
    }
    await tt.rejects(s.blobs.read(info.ref, { start: size, end: size + 1 }), { code: 'SYNC_ERR_RANGE_NOT_SATISFIABLE' })
    const empty = await s.blobs.write(generateBytes(0))
    tt.equal((await collect((await s.blobs.read(empty.ref))!)).length, 0, 'empty blob reads empty')
    tt.equal(await s.blobs.read('00000000-0000-0000-0000-000000000000'), undefined)
    await s.blobs.remove(info.ref)
    await s.blobs.remove(info.ref)
    tt.equal(await s.blobs.size(info.ref), undefined, 'remove is idempotent')
  })

  t.test(`${name} - blob size limit rejects and leaves nothing behind`, async (tt) => {
    const s = await open(tt)
    await tt.rejects(s.blobs.write(generateBytes(5000), { maxSize: 4096 }), { code: 'SYNC_ERR_BODY_TOO_LARGE' })
  })

  t.test(`${name} - large data (24 MiB) streams without loss`, async (tt) => {
    const s = await open(tt)
    const size = 24 * 1024 * 1024
    const info = await s.blobs.write(generateBytes(size, 1024 * 1024))
    tt.equal(info.size, size)
    let n = 0
    let ok = true
    for await (const c of (await s.blobs.read(info.ref))!) {
      const b = Buffer.from(c)
      if (!b.equals(expectedBytes(n, n + b.length - 1))) ok = false
      n += b.length
    }
    tt.equal(n, size)
    tt.ok(ok, 'every streamed chunk matches')
    const mid = await collect((await s.blobs.read(info.ref, { start: 12_345_678, end: 13_000_000 }))!)
    tt.ok(mid.equals(expectedBytes(12_345_678, 13_000_000)))
  })

  t.test(`${name} - delivery records: bulk fan-out and paging`, async (tt) => {
    const s = await open(tt)
    const n = 2000
    await s.deliveries.upsertMany(Array.from({ length: n }, (_, i) => delivery('big', `e${String(i).padStart(5, '0')}`, 1, 'pending')))
    let count = 0
    let cursor: string | undefined
    do {
      const p = await s.deliveries.listByObject(key('big'), { limit: 700, ...(cursor === undefined ? {} : { cursor }) })
      count += p.items.length
      cursor = p.next
    } while (cursor !== undefined)
    tt.equal(count, n)
    const one = await s.deliveries.get(key('big'), { orgId: 'org1', destinationType: 'edge', destinationId: 'e00042' })
    tt.equal(one?.status, 'pending')
    tt.ok(one?.times.pending !== undefined)
  })

  t.test(`${name} - transfer progress moves a delivering record forward by bytes only`, async (tt) => {
    const s = await open(tt)
    const dest = { orgId: 'org1', destinationType: 'edge', destinationId: 'n1' }
    await s.deliveries.upsertMany([delivery('p', 'n1', 1, 'delivering')])
    await s.deliveries.upsertMany([{ ...delivery('p', 'n1', 1, 'delivering'), bytes: 1000 }])
    await s.deliveries.upsertMany([{ ...delivery('p', 'n1', 1, 'delivering'), bytes: 400 }, delivery('p', 'n1', 1, 'delivering')])
    tt.equal((await s.deliveries.get(key('p'), dest))?.bytes, 1000, 'smaller or missing byte counts ignored')
    await s.deliveries.upsertMany([delivery('p', 'n1', 1, 'delivered')])
    await s.deliveries.upsertMany([{ ...delivery('p', 'n1', 1, 'delivering'), bytes: 5000 }])
    tt.equal((await s.deliveries.get(key('p'), dest))?.status, 'delivered', 'late progress never moves a delivered record back')
  })

  t.test(`${name} - delivery records never move backwards`, async (tt) => {
    const s = await open(tt)
    const dest = { orgId: 'org1', destinationType: 'edge', destinationId: 'n1' }
    await s.deliveries.upsertMany([delivery('a', 'n1', 5, 'delivering')])
    await s.deliveries.upsertMany([delivery('a', 'n1', 5, 'consumed')])
    await s.deliveries.upsertMany([delivery('a', 'n1', 5, 'delivered'), delivery('a', 'n1', 4, 'consumed'), delivery('a', 'n1', 5, 'delivering')])
    let r = await s.deliveries.get(key('a'), dest)
    tt.equal(r?.status, 'consumed', 'late delivered/delivering and older instance ignored')
    tt.equal(r?.instanceId, 5)
    tt.ok(r?.times.delivering !== undefined && r.times.consumed !== undefined, 'transition times kept')
    await s.deliveries.upsertMany([delivery('a', 'n1', 6, 'pending')])
    r = await s.deliveries.get(key('a'), dest)
    tt.equal(r?.status, 'pending', 'a newer instance starts over')
    tt.equal(r?.times.consumed, undefined)
    await s.deliveries.upsertMany([delivery('a', 'n1', 6, 'delivered'), { ...delivery('a', 'n1', 6, 'error'), message: 'disk full' }])
    tt.equal((await s.deliveries.get(key('a'), dest))?.status, 'error', 'an edge may refuse an instance after it arrived')
    await s.deliveries.upsertMany([delivery('a', 'n1', 6, 'delivered')])
    r = await s.deliveries.get(key('a'), dest)
    tt.equal(r?.status, 'delivered', 'a retry after an error moves on')
    await s.deliveries.upsertMany([delivery('b', 'n1', 1, 'pending'), delivery('c', 'n1', 1, 'pending'), delivery('c', 'n2', 1, 'pending')])
    tt.same((await s.deliveries.listByDestination(dest)).items.map((d) => d.objectId), ['a', 'b', 'c'])
    await s.deliveries.removeByObject(key('c'))
    tt.same((await s.deliveries.listByDestination(dest)).items.map((d) => d.objectId), ['a', 'b'])
    await s.deliveries.removeByDestination(dest)
    tt.same((await s.deliveries.listByDestination(dest)).items, [])
  })

  t.test(`${name} - parallel delivery batches on one record converge forward`, async (tt) => {
    const s = await open(tt)
    const statuses = ['pending', 'delivering', 'delivered', 'consumed'] as const
    await Promise.all(Array.from({ length: 12 }, async (_, i) => {
      await s.deliveries.upsertMany([delivery('p', 'n1', 1, statuses[i % 4] as DeliveryUpdate['status'])])
    }))
    const r = await s.deliveries.get(key('p'), { orgId: 'org1', destinationType: 'edge', destinationId: 'n1' })
    tt.equal(r?.status, 'consumed')
  })

  t.test(`${name} - nodes: upsert, select by type and properties, heartbeats`, async (tt) => {
    const s = await open(tt)
    const base = { orgId: 'org1', protocol: 'mqtt' as const, online: true, registeredAt: new Date().toISOString() }
    await s.nodes.upsert({ ...base, destinationType: 'edge', destinationId: 'n1', properties: { site: 'A' } })
    await s.nodes.upsert({ ...base, destinationType: 'edge', destinationId: 'n2', properties: { site: 'B' } })
    await s.nodes.upsert({ ...base, destinationType: 'meter', destinationId: 'm1', properties: { site: 'A' } })
    await s.nodes.upsert({ ...base, orgId: 'org2', destinationType: 'edge', destinationId: 'n1', properties: { site: 'A' } })
    tt.same((await s.nodes.list({ orgId: 'org1' })).items.map((n) => n.destinationId), ['n1', 'n2', 'm1'])
    tt.same((await s.nodes.list({ orgId: 'org1', destinationType: 'edge' })).items.map((n) => n.destinationId), ['n1', 'n2'])
    tt.same((await s.nodes.list({ orgId: 'org1', properties: { site: 'A' } })).items.map((n) => n.destinationId), ['n1', 'm1'])
    const at = '2030-01-01T00:00:00.000Z'
    await s.nodes.touchMany([{ node: { orgId: 'org1', destinationType: 'edge', destinationId: 'n2' }, at, online: false }, { node: { orgId: 'org1', destinationType: 'edge', destinationId: 'ghost' }, at, online: true }])
    const n2 = await s.nodes.get({ orgId: 'org1', destinationType: 'edge', destinationId: 'n2' })
    tt.equal(n2?.lastHeartbeat, at)
    tt.equal(n2?.online, false)
    tt.equal(await s.nodes.get({ orgId: 'org1', destinationType: 'edge', destinationId: 'ghost' }), undefined, 'touch does not create')
    await s.nodes.touchMany([{ node: { orgId: 'org1', destinationType: 'edge', destinationId: 'n2' }, at, online: true, status: { ems: { activeVersion: 3 } } }])
    tt.same((await s.nodes.get({ orgId: 'org1', destinationType: 'edge', destinationId: 'n2' }))?.status, { ems: { activeVersion: 3 } }, 'a heartbeat can carry the reported status')
    await s.nodes.touchMany([{ node: { orgId: 'org1', destinationType: 'edge', destinationId: 'n2' }, at, online: true }])
    tt.same((await s.nodes.get({ orgId: 'org1', destinationType: 'edge', destinationId: 'n2' }))?.status, { ems: { activeVersion: 3 } }, 'a heartbeat without status keeps the last one')
    const p1 = await s.nodes.list({ orgId: 'org1', limit: 2 })
    tt.equal(p1.items.length, 2)
    const p2 = await s.nodes.list({ orgId: 'org1', limit: 2, cursor: p1.next! })
    tt.same(p2.items.map((n) => n.destinationId), ['m1'])
    tt.equal(await s.nodes.remove({ orgId: 'org1', destinationType: 'edge', destinationId: 'n1' }), true)
    tt.equal(await s.nodes.remove({ orgId: 'org1', destinationType: 'edge', destinationId: 'n1' }), false)
  })

  t.test(`${name} - users and ACLs`, async (tt) => {
    const s = await open(tt)
    const u = { appKey: 'alice', orgId: 'org1', role: 'user' as const, secretHash: 'scrypt$x', disabled: false, created: new Date().toISOString() }
    await s.users.put(u)
    await s.users.put({ ...u, appKey: 'bob', orgId: 'org2' })
    tt.same(await s.users.get('alice'), u)
    tt.same((await s.users.list('org1')).map((x) => x.appKey), ['alice'])
    tt.equal((await s.users.list()).length, 2)
    await s.users.put({ ...u, disabled: true })
    tt.equal((await s.users.get('alice'))?.disabled, true)
    const acl = { orgId: 'org1', kind: 'objects' as const, key: 'conf', username: 'alice', userType: 'user' as const, role: 'aclReader' as const }
    await s.users.putAcl([acl, { ...acl, username: '*' }, { ...acl, key: 'other' }])
    await s.users.putAcl([{ ...acl, role: 'aclWriter' }])
    const list = await s.users.listAcl('org1', 'objects', 'conf')
    tt.equal(list.length, 2)
    tt.equal(list.find((e) => e.username === 'alice')?.role, 'aclWriter', 'same entry replaced')
    tt.equal((await s.users.listAcl('org1', 'objects')).length, 3)
    tt.equal((await s.users.listAcl('org1', 'destinations')).length, 0)
    tt.equal(await s.users.removeAcl('org1', 'objects', 'conf', 'user', 'alice'), true)
    tt.equal(await s.users.removeAcl('org1', 'objects', 'conf', 'user', 'alice'), false)
    tt.equal(await s.users.remove('alice'), true)
    tt.equal(await s.users.get('alice'), undefined)
  })

  t.test(`${name} - webhooks: register once per url, list per type, remove`, async (tt) => {
    const s = await open(tt)
    const h = { orgId: 'org1', objectType: 'conf', url: 'http://127.0.0.1:9/a', created: new Date().toISOString() }
    await s.webhooks.put(h)
    await s.webhooks.put(h)
    await s.webhooks.put({ ...h, url: 'http://127.0.0.1:9/b' })
    await s.webhooks.put({ ...h, objectType: 'other' })
    tt.same((await s.webhooks.list('org1', 'conf')).map((x) => x.url), ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b'])
    tt.equal(await s.webhooks.remove('org1', 'conf', 'http://127.0.0.1:9/a'), true)
    tt.equal(await s.webhooks.remove('org1', 'conf', 'http://127.0.0.1:9/a'), false)
    tt.equal((await s.webhooks.list('org1', 'conf')).length, 1)
  })

  t.test(`${name} - audit log appends in order`, async (tt) => {
    const s = await open(tt)
    for (let i = 0; i < 5; i++) {
      await s.audit.append({ at: new Date(Date.UTC(2030, 0, 1, 0, 0, i)).toISOString(), orgId: i % 2 === 0 ? 'org1' : 'org2', actor: 'admin', action: 'object.put', target: `conf/o${i}` })
    }
    tt.same((await s.audit.list({ orgId: 'org1' })).map((e) => e.target), ['conf/o0', 'conf/o2', 'conf/o4'])
    tt.same((await s.audit.list({ since: '2030-01-01T00:00:03.000Z' })).map((e) => e.target), ['conf/o3', 'conf/o4'])
  })

  t.test(`${name} - leases: one claimant per term, renew only the newest term`, async (tt) => {
    const s = await open(tt)
    tt.equal(await s.leases.current('sweeps'), undefined)
    const a = { name: 'sweeps', version: 1, holder: 'a', expiresAt: Date.now() + 10_000 }
    // Two instances race for the same term: exactly one creates it.
    const won = await Promise.all([s.leases.claim(a), s.leases.claim({ ...a, holder: 'b' })])
    tt.equal(won.filter(Boolean).length, 1, 'one winner')
    const holder = won[0] === true ? 'a' : 'b'
    tt.equal((await s.leases.current('sweeps'))?.holder, holder)
    tt.equal(await s.leases.renew({ ...a, holder, expiresAt: a.expiresAt + 5000 }), true)
    tt.equal((await s.leases.current('sweeps'))?.expiresAt, a.expiresAt + 5000)
    tt.equal(await s.leases.renew({ ...a, holder: holder === 'a' ? 'b' : 'a' }), false, 'only the holder renews')
    tt.equal(await s.leases.claim({ ...a, version: 2, holder: 'c' }), true, 'the next term')
    tt.equal(await s.leases.renew({ ...a, holder }), false, 'a superseded term cannot be renewed')
    tt.same(await s.leases.current('sweeps'), { name: 'sweeps', version: 2, holder: 'c', expiresAt: a.expiresAt })
    tt.equal(await s.leases.claim({ ...a, version: 2, holder: 'd' }), false, 'a taken term stays taken')
    tt.equal(await s.leases.current('other'), undefined, 'leases are per name')
  })

  t.test(`${name} - settings: first writer wins, everyone reads the same value`, async (tt) => {
    const s = await open(tt)
    tt.equal(await s.settings.get('signing-key/org1'), undefined)
    const got = await Promise.all(['k1', 'k2', 'k3'].map(async (v) => await s.settings.putIfAbsent('signing-key/org1', v)))
    tt.equal(new Set(got).size, 1, 'every writer gets the one value in force')
    tt.equal(await s.settings.get('signing-key/org1'), got[0])
    await s.settings.remove('signing-key/org1')
    tt.equal(await s.settings.get('signing-key/org1'), undefined)
    tt.equal(await s.settings.putIfAbsent('signing-key/org1', 'k4'), 'k4')
    await s.settings.set('upload/org1/a.b', 'one')
    await s.settings.set('upload/org1/a.b', 'two')
    await s.settings.set('upload/org1/a.b/0', 'piece')
    await s.settings.set('upload/org1/aXb', 'not under the prefix: the dot is not a wildcard')
    await s.settings.set('upload/org2/a.b', 'other org')
    tt.same(await s.settings.list('upload/org1/a.b'), [['upload/org1/a.b', 'two'], ['upload/org1/a.b/0', 'piece']], 'last write wins; listed by prefix, in name order')
    tt.same(await s.settings.list('nothing/'), [])
  })
}
