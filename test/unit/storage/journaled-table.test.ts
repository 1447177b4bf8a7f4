import { appendFile, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { JournaledTable } from '../../../src/storage/local/journaled-table.js'

interface Rec { v: number }

async function reopen (file: string): Promise<JournaledTable<Rec>> {
  const table = new JournaledTable<Rec>(file)
  await table.open()
  return table
}

t.test('a commit appends only the records it names; a reopen replays them', async (t) => {
  const file = path.join(t.testdir(), 'deliveries.json')
  const a = await reopen(file)
  for (let i = 0; i < 1000; i++) a.data[`k${i}`] = { v: i }
  await a.commit(Object.keys(a.data))
  const before = (await stat(file.replace('.json', '.journal'))).size
  a.data.k5 = { v: -5 }
  await a.commit(['k5'])
  const grew = (await stat(file.replace('.json', '.journal'))).size - before
  t.ok(grew < 40, `one changed record appends one short line (${grew} bytes), not the table`)
  Reflect.deleteProperty(a.data, 'k7')
  await a.commit(['k7'])
  await a.close()
  const b = await reopen(file)
  t.equal(Object.keys(b.data).length, 999)
  t.same(b.data.k5, { v: -5 })
  t.equal(b.data.k7, undefined, 'a deletion is replayed')
  await b.close()
})

t.test('concurrent commits all resolve durable (group commit)', async (t) => {
  const file = path.join(t.testdir(), 'nodes.json')
  const a = await reopen(file)
  await Promise.all(Array.from({ length: 200 }, async (_, i) => { a.data[`n${i}`] = { v: i }; await a.commit([`n${i}`]) }))
  await a.close()
  const b = await reopen(file)
  t.equal(Object.keys(b.data).length, 200)
  t.same(b.data.n199, { v: 199 })
  await b.close()
})

t.test('a torn last line (crash or full disk mid-append, never acknowledged) is cut off before the next append', async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'd.json')
  const a = await reopen(file)
  a.data.x = { v: 1 }
  await a.commit(['x'])
  await a.close()
  await appendFile(path.join(dir, 'd.journal'), '["y",{"v":')
  const b = await reopen(file)
  t.same(b.data, { x: { v: 1 } })
  t.equal(b.recovered.tornBytes, 10, 'the unfinished line was cut off')
  // More commits after the torn line: each must survive the next open (the first wave lost the
  // record after exactly one more commit, and refused to start after two).
  b.data.z = { v: 3 }
  await b.commit(['z'])
  b.data.w = { v: 4 }
  await b.commit(['w'])
  await b.close()
  const c = await reopen(file)
  t.same(c.data, { x: { v: 1 }, z: { v: 3 }, w: { v: 4 } }, 'every committed record is kept')
  t.same(c.recovered, { tornBytes: 0, corruptLines: [] }, 'nothing left to repair')
  await c.close()
})

t.test('a corrupt line in the middle is skipped loudly: the journal is kept aside and folded into a snapshot', async (t) => {
  const dir = t.testdir()
  await writeFile(path.join(dir, 'e.journal'), '["x",{"v":1}]\nnot json\n["y",{"v":2}]\n[1,2,3]\n["x",{"v":5}]\n')
  const a = await reopen(path.join(dir, 'e.json'))
  t.same(a.data, { x: { v: 5 }, y: { v: 2 } }, 'every good line applied, in order')
  t.same(a.recovered.corruptLines, [2, 4], 'the bad lines are named')
  t.match(await readFile(a.recovered.savedAs ?? '', 'utf8'), /not json/, 'the journal as found is kept for inspection')
  t.same(JSON.parse(await readFile(path.join(dir, 'e.json'), 'utf8')), a.data, 'folded into a fresh snapshot at once')
  await a.close()
  const b = await reopen(path.join(dir, 'e.json'))
  t.same(b.data, { x: { v: 5 }, y: { v: 2 } })
  t.same(b.recovered.corruptLines, [], 'the next start is clean')
  await b.close()
})

t.test('a journal larger than the snapshot is folded into a new snapshot; an old journal replayed over it changes nothing', async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'big.json')
  const a = await reopen(file)
  const pad = 'x'.repeat(1000)
  // More than the 8 MiB floor of journal: at least one fold happens.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3000; i++) a.data[`k${i}`] = { v: round * 10_000 + i, pad } as unknown as Rec
    await a.commit(Object.keys(a.data))
  }
  const journal = await readFile(path.join(dir, 'big.journal'), 'utf8')
  const snapshot = JSON.parse(await readFile(file, 'utf8')) as Record<string, Rec>
  t.ok(Object.keys(snapshot).length === 3000, 'a snapshot was written')
  t.ok(journal.length < 1024 * 1024, `the journal was truncated at the fold (${journal.length} bytes left)`)
  await a.close()
  // A crash between writing the snapshot and truncating: the journal's records are already in it.
  await appendFile(path.join(dir, 'big.journal'), JSON.stringify(['k1', { v: 20_001, pad }]) + '\n')
  const b = await reopen(file)
  t.equal(Object.keys(b.data).length, 3000)
  t.equal(b.data.k1?.v, 20_001)
  t.equal(b.data.k2999?.v, 22_999)
  await b.close()
})
