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

t.test('a torn last line (crash mid-append, never acknowledged) is ignored; a corrupt middle line is an error', async (t) => {
  const dir = t.testdir()
  const file = path.join(dir, 'd.json')
  const a = await reopen(file)
  a.data.x = { v: 1 }
  await a.commit(['x'])
  await a.close()
  await appendFile(path.join(dir, 'd.journal'), '["y",{"v":')
  const b = await reopen(file)
  t.same(b.data, { x: { v: 1 } })
  await b.close()
  await writeFile(path.join(dir, 'e.journal'), '["x",{"v":1}]\nnot json\n["y",{"v":2}]\n')
  await t.rejects(reopen(path.join(dir, 'e.json')), { code: 'SYNC_ERR_STORAGE' })
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
