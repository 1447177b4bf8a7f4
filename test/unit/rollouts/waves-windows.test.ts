/** Wave splitting and maintenance-window arithmetic (pure functions; times given, not mocked). */
import t from 'tap'
import { splitWaves } from '../../../src/css/rollouts/model.js'
import { nextOpen, openUntil, parseCron, windowsFor } from '../../../src/common/windows.js'

const edges = Array.from({ length: 20 }, (_, i) => `e${String(i).padStart(2, '0')}`)

t.test('waves by share, count and growth', async (t) => {
  t.same(splitWaves(edges, [{ percent: 10 }, { percent: 40 }, { percent: 50 }]).map((w) => w.length), [2, 8, 10])
  t.same(splitWaves(edges, [{ count: 3 }, { count: 5 }]).map((w) => w.length), [3, 5, 12], 'what the counts leave is a last wave')
  t.same(splitWaves(edges, { exponential: { start: 2, factor: 2 } }).map((w) => w.length), [2, 4, 8, 6])
  t.same(splitWaves(edges.slice(0, 3), [{ percent: 10 }, { percent: 90 }]).map((w) => w.length), [1, 2], 'at least one edge per wave')
  t.same(splitWaves(edges, [{ percent: 50 }]).flat(), edges.slice(0, 10).concat(edges.slice(10)), 'nobody lost or repeated')
})

t.test('cron: 5 or 6 fields, ranges, steps, lists; clear errors', async (t) => {
  t.equal(parseCron('*/15 2-4 * * 1,3').length, 6)
  t.ok(parseCron('0 0 2 * * 7')[5]?.has(0), 'weekday 7 is Sunday')
  t.throws(() => parseCron('61 * * * *'), { code: 'SYNC_ERR_VALIDATION' })
  t.throws(() => parseCron('* * *'), /5 fields/)
  t.throws(() => parseCron('a * * * *'), /cannot read/)
})

t.test('a window is open from each match for its duration, on its zone\'s clock', async (t) => {
  const w = { cron: '0 2 * * *', durationSeconds: 3600, timeZone: 'UTC' }
  t.equal(openUntil(w, Date.parse('2026-12-01T01:59:59Z')), undefined)
  t.equal(openUntil(w, Date.parse('2026-12-01T02:00:00Z')), Date.parse('2026-12-01T03:00:00Z'))
  t.equal(openUntil(w, Date.parse('2026-12-01T02:59:59Z')), Date.parse('2026-12-01T03:00:00Z'))
  t.equal(openUntil(w, Date.parse('2026-12-01T03:00:00Z')), undefined)
  t.equal(nextOpen(w, Date.parse('2026-12-01T03:00:00Z')), Date.parse('2026-12-02T02:00:00Z'))
  const berlin = { ...w, timeZone: 'Europe/Berlin' } // UTC+1 in December
  t.equal(nextOpen(berlin, Date.parse('2026-12-01T00:00:00Z')), Date.parse('2026-12-01T01:00:00Z'))
  const sec = { cron: '30 15 10 * * *', durationSeconds: 5, timeZone: 'UTC' }
  t.ok(openUntil(sec, Date.parse('2026-12-01T10:15:34Z')) !== undefined, 'with seconds')
  t.equal(openUntil(sec, Date.parse('2026-12-01T10:15:35Z')), undefined)
})

t.test('which windows an edge has: site, selector, or all', async (t) => {
  const all = [
    { name: 'a', cron: '0 2 * * *', durationSeconds: 60, timeZone: 'UTC', site: 'A' },
    { name: 'n', cron: '0 2 * * *', durationSeconds: 60, timeZone: 'UTC', selector: { region: 'north' } },
    { name: 'org', cron: '0 2 * * *', durationSeconds: 60, timeZone: 'UTC' }
  ]
  t.same(windowsFor(all, { site: 'A', region: 'north' }).map((w) => w.name), ['a', 'n', 'org'])
  t.same(windowsFor(all, { site: 'B' }).map((w) => w.name), ['org'])
})
