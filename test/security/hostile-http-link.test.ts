/**
 * The HTTP link as an attacker uses it: raw requests with an enrolled node's own credentials (which
 * the CSS rightly accepts), or with an app's. The link names no node in its requests, so a node can
 * only ever read its own mailbox and speak as itself; everything else is a clear 4xx.
 */
import path from 'node:path'
import t from 'tap'
import { decodeFrames } from '../../src/common/protocol/frames.js'
import { decodeDown, encode } from '../../src/common/protocol/messages.js'
import { ADMIN, APP, basic, enroll, startCss, waitFor } from '../helpers/cluster.js'

const root = t.testdir()
const css = await startCss(t, path.join(root, 'css'), { MqttMaxPayloadSize: 65536 })
const admin = { authorization: basic(ADMIN) }
const creds = new Map<string, { key: string, secret: string }>()
for (const id of ['n1', 'n2']) creds.set(id, { key: `org1/edge/${id}`, secret: await enroll(css, 'org1', 'edge', id) })
const as = (id: string): { authorization: string } => ({ authorization: basic(creds.get(id) ?? { key: '', secret: '' }) })

async function poll (id: string, session: string, ack = 0, wait = 0): Promise<{ status: number, fresh: boolean, body: Buffer }> {
  const r = await fetch(`${css.restUrl}/api/v1/link/down?session=${session}&ack=${ack}&wait=${wait}`, { headers: as(id) })
  return { status: r.status, fresh: r.headers.get('x-link-fresh') === 'true', body: Buffer.from(await r.arrayBuffer()) }
}

async function up (id: string, session: string, payload: Buffer | string): Promise<Response> {
  return await fetch(`${css.restUrl}/api/v1/link/up?session=${session}`, {
    method: 'POST',
    headers: { ...as(id), 'content-type': 'application/octet-stream' },
    body: payload
  })
}

async function put (id: string, meta: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}`, {
    method: 'PUT',
    headers: { ...admin, 'content-type': 'application/json' },
    body: JSON.stringify({ meta, data: Buffer.from(`secret of ${id}`).toString('base64') })
  })
  if (r.status !== 204) throw new Error(`PUT ${id}: ${r.status}`)
}

const register = (holdings: unknown[] = []): Buffer =>
  encode({ v: 1, kind: 'register', properties: {}, codeVersion: 'x', holdings: holdings as [], protocol: 'http' })

t.test('http link - only enrolled nodes may use it; apps and strangers get 401/403 with a code', async (t) => {
  const anon = await fetch(`${css.restUrl}/api/v1/link/down?session=abcdefgh12`)
  t.equal(anon.status, 401)
  const app = await fetch(`${css.restUrl}/api/v1/link/down?session=abcdefgh12`, { headers: admin })
  t.equal(app.status, 403)
  t.equal((await app.json() as { code: string }).code, 'SYNC_ERR_FORBIDDEN')
  const wrong = await fetch(`${css.restUrl}/api/v1/link/down?session=abcdefgh12`, { headers: { authorization: basic({ key: 'org1/edge/n1', secret: 'guess' }) } })
  t.equal(wrong.status, 401)
  t.equal((await fetch(`${css.restUrl}/api/v1/link/down?session=x`, { headers: as('n1') })).status, 400, 'a session id too short')
  t.equal((await fetch(`${css.restUrl}/api/v1/link/down?session=abcdefgh12&wait=999`, { headers: as('n1') })).status, 400, 'a wait too long')
  t.equal((await fetch(`${css.restUrl}/api/v1/link/down?session=abcdefgh12&node=org1/edge/n2`, { headers: as('n1') })).status, 400, 'no parameter names another node')
  void APP
})

t.test('http link - a node reads only its own mailbox: n2 never receives what is meant for n1', async (t) => {
  const s1 = 'session-n1-aaaa'
  const s2 = 'session-n2-bbbb'
  t.ok((await poll('n1', s1)).fresh, 'a new session is fresh')
  t.ok((await poll('n2', s2)).fresh)
  t.equal((await up('n1', s1, register())).status, 204)
  t.equal((await up('n2', s2, register())).status, 204)
  await put('for-n1', { objectType: 'conf', destinationType: 'edge', destinationID: 'n1' })
  await put('for-all', { objectType: 'conf', destinationType: 'edge' })
  const got = new Map<string, string[]>()
  for (const [id, s] of [['n1', s1], ['n2', s2]] as const) {
    const kinds: string[] = []
    let ack = 0
    await waitFor(`for-all in ${id}'s mailbox`, async () => {
      const r = await poll(id, s, ack, 1)
      for (const f of decodeFrames(r.body)) {
        t.ok(f.topic.includes(`/org1/edge/${id}/`) || f.topic.includes('/_all/'), `${id} gets only its own or shared topics (${f.topic})`)
        const m = decodeDown(f.payload)
        kinds.push(m.kind === 'update' ? `update:${m.meta.objectID}` : m.kind)
        ack = f.seq
      }
      return kinds.includes('update:for-all') ? true : undefined
    })
    got.set(id, kinds)
  }
  t.ok(got.get('n1')?.includes('update:for-n1'), 'n1 got its object')
  t.notOk(got.get('n2')?.includes('update:for-n1'), 'n2 did not')
})

t.test('http link - unacknowledged messages are delivered again; an ack from a lost session is ignored', async (t) => {
  const s = 'session-n1-cccc'
  t.ok((await poll('n1', s, 999)).fresh, 'a stale ack on a new session drops nothing')
  t.equal((await up('n1', s, register())).status, 204)
  const first = decodeFrames((await poll('n1', s, 0, 2)).body)
  t.ok(first.length > 0, 'the register answer and resent objects wait')
  const again = decodeFrames((await poll('n1', s, 0, 0)).body)
  t.same(again.map((f) => f.seq), first.map((f) => f.seq), 'not acknowledged: sent again')
  const last = first.at(-1)?.seq ?? 0
  const after = decodeFrames((await poll('n1', s, last, 0)).body)
  t.notOk(after.some((f) => f.seq <= last), 'acknowledged frames are gone')
})

t.test('http link - n2 speaks only as itself: its forged ack about n1 counts as its own and changes nothing of n1', async (t) => {
  const s2 = 'session-n2-dddd'
  await poll('n2', s2)
  const before = await (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/for-n1/destinations`, { headers: admin })).json() as Array<{ destinationID: string, status: string }>
  const forged = encode({ v: 1, kind: 'ack', state: 'consumed', objectType: 'conf', objectId: 'for-n1', instanceId: 1 })
  t.equal((await up('n2', s2, forged)).status, 204, 'accepted as n2\'s message (n2 is no destination of it)')
  const after = await (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/for-n1/destinations`, { headers: admin })).json() as Array<{ destinationID: string, status: string }>
  t.same(after, before, 'n1\'s delivery state is untouched')
  t.notOk(after.some((d) => d.destinationID === 'n2'), 'and n2 did not become a destination')
})

t.test('http link - bad messages get a clear 400/413 and leave the CSS running', async (t) => {
  const s = 'session-n2-eeee'
  await poll('n2', s)
  const garbage = await up('n2', s, 'not a message')
  t.equal(garbage.status, 400)
  t.equal((await garbage.json() as { code: string }).code, 'SYNC_ERR_PROTOCOL')
  const wrong = await up('n2', s, JSON.stringify({ v: 1, kind: 'register', holdings: 'all' }))
  t.equal(wrong.status, 400)
  t.equal((await wrong.json() as { code: string }).code, 'SYNC_ERR_PROTOCOL')
  const big = await up('n2', s, Buffer.alloc(70_000, 1))
  t.equal(big.status, 413)
  t.equal((await fetch(`${css.restUrl}/api/v1/link/up?session=${s}`, { method: 'POST', headers: as('n2') })).status, 400, 'an empty body')
  t.equal((await poll('n2', s)).status, 200, 'the CSS still answers')
})

t.test('http link - revoking a node ends its session at once', async (t) => {
  const s = 'session-n2-ffff'
  await poll('n2', s)
  const r = await fetch(`${css.restUrl}/api/v1/nodes/org1/edge/n2`, { method: 'DELETE', headers: admin })
  t.ok(r.status === 204 || r.status === 200, `node removed (${r.status})`)
  t.equal((await poll('n2', s)).status, 401, 'its credentials no longer open the link')
})
