import t from 'tap'
import { forEachLimit } from '../../../src/common/concurrency.js'

t.test('forEachLimit runs every item once with at most `limit` in flight', async (t) => {
  let inFlight = 0
  let most = 0
  const seen: number[] = []
  await forEachLimit([...Array(50).keys()], 4, async (item, index) => {
    t.equal(item, index)
    inFlight++
    most = Math.max(most, inFlight)
    await new Promise((resolve) => setTimeout(resolve, 1 + (item % 3)))
    seen.push(item)
    inFlight--
  })
  t.equal(most, 4)
  t.same(seen.sort((a, b) => a - b), [...Array(50).keys()])
  await forEachLimit([], 4, async () => { t.fail('no call for no items') })
  await t.rejects(forEachLimit([1, 2, 3], 2, async (i) => { if (i === 2) throw new Error('boom') }), /boom/)
})
