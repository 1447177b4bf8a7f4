/**
 * The local object table as a snapshot plus journal (#22): a store written before it (one
 * `objects.json` holding the whole table) opens with every object, its history and its counter;
 * instance ids never go back after a removal and a reopen; a put appends its entry, not the table.
 */
import { readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { openLocalStore } from '../../../src/storage/index.js'

const key = (id: string): { orgId: string, objectType: string, objectId: string } => ({ orgId: 'org1', objectType: 'conf', objectId: id })
const draft = (id: string, v: string) => () => ({
  meta: { objectID: id, objectType: 'conf', destinationOrgID: 'org1', dataID: 0, objectSize: 0, version: v },
  status: 'ready' as const
})

t.test('a store from before the journal opens with every object, its history and counter', async (t) => {
  const dir = t.testdir()
  const obj = (id: string, instanceID: number, version: string): unknown => ({
    key: key(id),
    meta: { objectID: id, objectType: 'conf', destinationOrgID: 'org1', dataID: 0, objectSize: 0, version, instanceID, created: '2026-01-01T00:00:00.000Z', lastUpdate: '2026-01-01T00:00:00.000Z' },
    status: 'ready'
  })
  const SEP = '\u0001' // storage/common.ts
  const id = (o: string): string => ['org1', 'conf', o].join(SEP)
  // The legacy lowdb file, as 0.1 wrote it: the counter is past every id kept (o3 was removed).
  const legacy = JSON.stringify({
    seq: 7,
    current: { [id('a')]: obj('a', 5, 'a2'), [id('b')]: obj('b', 6, 'b1') },
    history: { [id('a')]: [obj('a', 2, 'a1')] }
  })
  await writeFile(path.join(dir, 'objects.json'), legacy)
  const s = await openLocalStore(dir, { historyRetention: 3 })
  t.equal((await s.objects.get(key('a')))?.meta.version, 'a2')
  t.same((await s.objects.history(key('a'))).map((o) => o.meta.version), ['a2', 'a1'], 'history kept')
  t.equal((await s.objects.get(key('b')))?.meta.instanceID, 6)
  const next = await s.objects.put(key('c'), draft('c', 'c1'))
  t.equal(next.meta.instanceID, 8, 'the counter carried over (7 was used by a removed object)')
  await s.close()
  await t.rejects(stat(path.join(dir, 'objects.json')), { code: 'ENOENT' }, 'the legacy file is gone once migrated')
  const again = await openLocalStore(dir, { historyRetention: 3 })
  t.same((await again.objects.list({ orgId: 'org1' })).items.map((o) => o.meta.version), ['a2', 'b1', 'c1'])
  await again.objects.put(key('a'), draft('a', 'a3'))
  await again.close()
  // Killed after the journal took the old table but before the old file was removed: the old
  // file is back beside a journal that has moved on. Nothing goes back.
  await writeFile(path.join(dir, 'objects.json'), legacy)
  const crashed = await openLocalStore(dir, { historyRetention: 3 })
  t.equal((await crashed.objects.get(key('a')))?.meta.version, 'a3', 'the newer instance in the journal is kept')
  t.same((await crashed.objects.history(key('a'))).map((o) => o.meta.version), ['a3', 'a2', 'a1'])
  t.equal((await crashed.objects.put(key('d'), draft('d', 'd1'))).meta.instanceID, 10, 'the counter did not go back')
  await crashed.close()
})

t.test('instance ids never go back after a removal and a reopen', async (t) => {
  const dir = t.testdir()
  const s = await openLocalStore(dir, { historyRetention: 10 })
  await s.objects.put(key('x'), draft('x', '1'))
  const y = await s.objects.put(key('y'), draft('y', '1'))
  await s.objects.remove(key('y'))
  await s.close()
  const again = await openLocalStore(dir, { historyRetention: 10 })
  t.equal(await again.objects.get(key('y')), undefined, 'the removal is durable')
  const z = await again.objects.put(key('z'), draft('z', '1'))
  t.ok(z.meta.instanceID > y.meta.instanceID, `new id ${z.meta.instanceID} after ${y.meta.instanceID}`)
  await again.close()
})

t.test('a put appends its own entry, whatever the table size and the history kept', async (t) => {
  const dir = t.testdir()
  // Every instance kept, as for EMS types: a put still writes the new instance and the moved one.
  const s = await openLocalStore(dir, { historyRetention: 10, keepAllHistory: ['conf'] })
  for (let v = 0; v < 200; v++) await s.objects.put(key('o1'), draft('o1', `v${v}`))
  for (let i = 0; i < 500; i++) await s.objects.put(key(`o${i}`), draft(`o${i}`, '1'))
  const journal = path.join(dir, 'object-entries.journal')
  const before = (await stat(journal)).size
  await s.objects.put(key('o1'), draft('o1', '2'))
  const grew = (await stat(journal)).size - before
  t.ok(grew > 0 && grew < 2000, `one put appended ${grew} bytes (500 objects held)`)
  const last = (await readFile(journal, 'utf8')).trimEnd().split('\n').slice(-3).join('\n')
  t.match(last, /"version":"2"/, 'the entry written is the new instance')
  await s.close()
  const again = await openLocalStore(dir, { historyRetention: 10, keepAllHistory: ['conf'] })
  const h = await again.objects.history(key('o1'))
  t.equal(h.length, 202, 'all 202 instances of o1 back after a reopen')
  t.same(h.slice(0, 3).map((o) => o.meta.version), ['2', '1', 'v199'], 'newest first')
  t.ok(h.every((o, i) => i === 0 || (h[i - 1]?.meta.instanceID ?? 0) > o.meta.instanceID), 'in instance order')
  await again.close()
})
