import t from 'tap'
import { silentLogger } from '../../../src/common/log.js'
import { Leader } from '../../../src/css/leader.js'
import { LeaseTable, type LeaseTableData } from '../../../src/storage/memory/lease-table.js'
import type { LeaseStore } from '../../../src/storage/index.js'
import { waitFor } from '../../helpers/cluster.js'

const TTL = 300

/** A lease store one instance can be cut off from (its calls fail), as in a network partition. */
function reachable (inner: LeaseStore): { store: LeaseStore, cut: (v: boolean) => void } {
  let down = false
  const gate = async <T>(f: () => Promise<T>): Promise<T> => {
    if (down) throw new Error('store unreachable')
    return await f()
  }
  return {
    cut: (v) => { down = v },
    store: {
      current: async (n) => await gate(async () => await inner.current(n)),
      claim: async (l) => await gate(async () => await inner.claim(l)),
      renew: async (l) => await gate(async () => await inner.renew(l))
    }
  }
}

t.test('one leader; a graceful stop hands over at once', async (t) => {
  const data: LeaseTableData = {}
  const table = new LeaseTable(() => data)
  const a = new Leader(table, 'a', TTL, silentLogger)
  const b = new Leader(table, 'b', TTL, silentLogger)
  let gained = 0
  b.onGained(async () => { gained++ })
  await a.start()
  await b.start()
  t.equal(a.isLeader, true, 'the first to start leads')
  t.equal(b.isLeader, false)
  t.equal(b.status().holder, 'a', 'the follower sees who leads')
  const before = Date.now()
  await a.stop()
  await waitFor('b leads', async () => b.isLeader ? true : undefined, 5000)
  t.ok(Date.now() - before < TTL, `taken over ${Date.now() - before} ms after the resignation, before a term would lapse`)
  t.equal(gained, 1, 'b was told it gained the lease')
  t.equal(b.status().version, 2, 'a new term, a new fencing version')
  await b.stop()
})

t.test('a cut-off leader loses the lease, and its fenced work does not run after it lost', async (t) => {
  const data: LeaseTableData = {}
  const table = new LeaseTable(() => data)
  const ra = reachable(table)
  const a = new Leader(ra.store, 'a', TTL, silentLogger)
  const b = new Leader(table, 'b', TTL, silentLogger)
  await a.start()
  await b.start()
  t.equal(await a.fenced(async () => {}), true, 'the leader runs fenced work')
  t.equal(await b.fenced(async () => { t.fail('a follower must not run it') }), false)
  ra.cut(true)
  await waitFor('b takes over after the term lapsed', async () => b.isLeader ? true : undefined, 5000)
  t.equal(a.isLeader, false, 'a stops leading by its own clock once its term is over')
  ra.cut(false)
  // Even if a still believed it led, the fencing check in the store stops it.
  let ran = false
  t.equal(await a.fenced(async () => { ran = true }), false)
  t.equal(ran, false, 'the old leader did not act')
  t.equal(await b.fenced(async () => {}), true)
  await a.stop()
  await b.stop()
  t.equal(b.isLeader, false)
})

t.test('a leader paused past its term finds a newer term at the fencing check and does not act', async (t) => {
  const data: LeaseTableData = {}
  const table = new LeaseTable(() => data)
  const a = new Leader(table, 'a', 60_000, silentLogger)
  await a.start()
  t.equal(a.isLeader, true)
  // While a was frozen, its term lapsed and b took the next one (a's clock still says it leads).
  t.equal(await table.claim({ name: 'css-sweeps', version: 2, holder: 'b', expiresAt: Date.now() + 60_000 }), true)
  t.equal(a.isLeader, true, 'a does not know yet')
  let ran = false
  t.equal(await a.fenced(async () => { ran = true }), false, 'the fencing check refuses')
  t.equal(ran, false)
  t.equal(a.isLeader, false, 'and a steps down')
  t.equal(a.status().holder, 'b')
  await a.stop()
  t.equal((await table.current('css-sweeps'))?.holder, 'b', 'stopping a does not touch b\'s term')
})

t.test('an instance restarted after a crash takes its own unexpired lease back at once', async (t) => {
  const data: LeaseTableData = {}
  const table = new LeaseTable(() => data)
  // The crashed life's term, still running for a minute.
  t.equal(await table.claim({ name: 'css-sweeps', version: 4, holder: 'a', expiresAt: Date.now() + 60_000 }), true)
  const other = new Leader(table, 'b', 60_000, silentLogger)
  await other.start()
  t.equal(other.isLeader, false, 'another instance waits for the term to lapse')
  const again = new Leader(table, 'a', 60_000, silentLogger)
  await again.start()
  t.equal(again.isLeader, true, 'the same instance leads again without waiting')
  t.equal(again.status().version, 5, 'in a new term: fenced work of the old life is refused')
  await again.stop()
  await other.stop()
})
