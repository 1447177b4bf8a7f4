/**
 * Enrolling a node that is enrolled already used to issue a new secret silently, and the live ESS
 * was locked out at its next restart. Now it is a 409 that says what to do; `rotate=true` (syncctl
 * `nodes enroll --rotate`) replaces the secret on purpose: the old one stops working, the new works.
 */
import path from 'node:path'
import t from 'tap'
import { ADMIN, basic, startCss } from '../helpers/cluster.js'
import { connackCode } from '../helpers/raw-node.js'

const css = await startCss(t, path.join(t.testdir(), 'css'))
const enroll = async (query = ''): Promise<{ status: number, body: Record<string, string> }> => {
  const r = await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/again/enroll${query}`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
  return { status: r.status, body: await r.json() as Record<string, string> }
}
const login = async (secret: string): Promise<number> => await connackCode({ url: css.mqttUrls[0] ?? '', org: 'org1', type: 'edge', id: 'again', secret })

t.test('a second enrollment is refused unless rotating, and rotating replaces the secret', async (t) => {
  const first = await enroll()
  t.equal(first.status, 201)
  const again = await enroll()
  t.same([again.status, again.body.code], [409, 'SYNC_ERR_CONFLICT'])
  t.match(again.body.detail, /rotate/, 'the problem says how to rotate')
  t.equal(await login(first.body.secret ?? ''), 0, 'the first secret still works')
  const rotated = await enroll('?rotate=true')
  t.equal(rotated.status, 201)
  t.not(rotated.body.secret, first.body.secret)
  t.equal(await login(first.body.secret ?? ''), 4, 'the old secret is refused')
  t.equal(await login(rotated.body.secret ?? ''), 0, 'the new one works')
})
