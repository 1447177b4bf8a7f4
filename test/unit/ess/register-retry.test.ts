/**
 * The ESS registers again, with growing waits, until the CSS answers (a register published while
 * no CSS was subscribed is lost for good), stops once answered, and registers again when the CSS
 * asks for it. Timers are node:test's mock timers: the waits are exact, the test takes no time.
 */
import { mock } from 'node:test'
import t from 'tap'
import { fakeEdge } from '../../helpers/fake-edge.js'

t.beforeEach(() => { mock.timers.enable({ apis: ['setTimeout'] }) })
t.afterEach(() => { mock.timers.reset() })

t.test('an unanswered register is sent again with growing waits, and never after the answer', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { registerRetryMs: 1000 })
  const kinds = (): string[] => e.sent.map((m) => m.kind)
  await e.sync.register()
  t.same(kinds(), ['register'])
  t.same(e.gate, ['pause'], 'plugins held while the edge resyncs')
  mock.timers.tick(749)
  await Promise.resolve()
  t.same(kinds(), ['register'], 'not before 0.75 of the first wait')
  mock.timers.tick(1250 - 749)
  await new Promise(setImmediate)
  t.same(kinds(), ['register', 'register'], 'again within 0.75-1.25 of the first wait')
  mock.timers.tick(1499)
  await new Promise(setImmediate)
  t.same(kinds(), ['register', 'register'], 'the second wait is doubled (at least 1.5 s)')
  mock.timers.tick(2500 - 1499)
  await new Promise(setImmediate)
  t.same(kinds(), ['register', 'register', 'register'])
  await e.say({ kind: 'registered', resent: 0 })
  t.same(e.gate, ['pause', 'resume'], 'plugins go ahead once the CSS answered')
  mock.timers.tick(120_000)
  await new Promise(setImmediate)
  t.equal(kinds().length, 3, 'nothing more once the CSS answered')
})

t.test('waits stop growing at 60 s', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { registerRetryMs: 40_000 })
  await e.sync.register()
  for (let i = 0; i < 4; i++) {
    mock.timers.tick(75_000)
    await new Promise(setImmediate)
  }
  t.equal(e.sent.length, 5, 'one register per 75 s at most (60 s + 25% jitter)')
})

t.test('a disconnected ESS does not retry (its next connect registers)', async (t) => {
  t.testdir()
  const e = fakeEdge(t, { registerRetryMs: 100 })
  await e.sync.register()
  e.link.connected = false
  mock.timers.tick(10_000)
  await new Promise(setImmediate)
  t.same(e.sent.map((m) => m.kind), ['register'])
})

t.test('the CSS\'s reregister request is answered with a register within its window', async (t) => {
  t.testdir()
  const e = fakeEdge(t)
  await e.say({ kind: 'reregister', withinMs: 5000 })
  t.same(e.sent, [], 'not at once: a fleet must not register all in one instant')
  mock.timers.tick(5000)
  await new Promise(setImmediate)
  t.same(e.sent.map((m) => m.kind), ['register'])
  const reg = e.sent[0]
  t.same(reg?.kind === 'register' ? reg.properties : undefined, { site: 's1' }, 'with the node properties')
})
