/**
 * Failed-login back-off cannot be turned against its victim: a guesser at one loopback address
 * (127.0.0.2, .3, ...) is slowed down, while the real owner of the key, from its own address, gets
 * in with the right secret at once. On REST and on the embedded broker.
 */
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { ADMIN, basic, enroll, startCss } from '../helpers/cluster.js'
import { connackCode } from '../helpers/raw-node.js'

const css = await startCss(t, path.join(t.testdir(), 'css'))
const rest = new URL(css.restUrl)

/** A GET from a chosen source address; resolves with the status code. */
async function getFrom (localAddress: string, key: string, secret: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const req = http.get({ host: rest.hostname, port: rest.port, path: '/api/v1/destinations/org1', localAddress, auth: `${key}:${secret}` }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
  })
}

t.test('REST: guessing the admin\'s secret throttles the guesser, not the admin', async (t) => {
  const guesses: number[] = []
  for (let i = 0; i < 8; i++) guesses.push(await getFrom('127.0.0.3', ADMIN.key, `wrong-${i}`))
  t.same(guesses.slice(0, 5), [401, 401, 401, 401, 401], 'the first guesses are answered 401')
  t.equal(guesses.at(-1), 429, 'then the guessing address is throttled')
  t.equal(await getFrom('127.0.0.3', ADMIN.key, ADMIN.secret), 429, 'even the right secret waits at the guessing address')
  t.equal(await getFrom('127.0.0.1', ADMIN.key, ADMIN.secret), 200, 'the admin from its own address gets in at once')
  const r = await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: { authorization: basic(ADMIN) } })
  t.equal(r.status, 200)
})

t.test('REST: an address spraying many keys is throttled as a whole', async (t) => {
  const codes: number[] = []
  for (let i = 0; i < 31; i++) codes.push(await getFrom('127.0.0.4', `nobody-${i}`, 'x'))
  t.same(new Set(codes), new Set([401]), 'one guess per key: every key\'s first failure is a 401')
  t.equal(await getFrom('127.0.0.4', ADMIN.key, ADMIN.secret), 429, 'whatever key it tries next')
  t.equal(await getFrom('127.0.0.5', ADMIN.key, ADMIN.secret), 200, 'other addresses are not affected')
})

t.test('MQTT: guessing a node\'s secret throttles the guesser, never locks the node out', async (t) => {
  const secret = await enroll(css, 'org1', 'edge', 'victim')
  const at = (localAddress: string, s: string): Promise<number> =>
    connackCode({ url: css.mqttUrls[0] ?? '', org: 'org1', type: 'edge', id: 'victim', secret: s, localAddress })
  const codes: number[] = []
  for (let i = 0; i < 8; i++) codes.push(await at('127.0.0.6', `guess-${i}`))
  t.same(codes.slice(0, 5), [4, 4, 4, 4, 4], 'wrong secrets: CONNACK 4 (bad username or password)')
  t.equal(codes.at(-1), 3, 'then the guessing address is throttled (CONNACK 3, server unavailable)')
  t.equal(await at('127.0.0.1', secret), 0, 'the real node, from its own address, connects at once')
  t.equal(await at('127.0.0.7', secret), 0, 'and from a new address too')
})
