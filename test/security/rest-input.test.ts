/**
 * REST input holes, each sent as curl would send it: wrong types, out-of-range numbers, bad base64,
 * no body, overlong names. Each is a 400 problem+json naming the path (never a 5xx, never stored),
 * and the OpenAPI document lists every status an operation can answer.
 */
import path from 'node:path'
import t from 'tap'
import { ADMIN, basic, startCss } from '../helpers/cluster.js'

const css = await startCss(t, path.join(t.testdir(), 'css'))
const admin = { authorization: basic(ADMIN) }
const objects = `${css.restUrl}/api/v1/objects/org1`

async function putJson (id: string, body: unknown): Promise<{ status: number, body: Record<string, unknown> }> {
  const r = await fetch(`${objects}/conf/${id}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await r.text()
  return { status: r.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
}

t.test('wrong types and ranges in an object body are 400s naming the path, and nothing is stored', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['destinationsList of numbers', { meta: { destinationsList: [5] } }, /destinationsList\/0/],
    ['destinationType as an array', { meta: { destinationType: ['edge'] } }, /destinationType/],
    ['data that is not base64', { meta: {}, data: 'not base64!!' }, /data/],
    ['negative consumers', { meta: { consumers: -1 } }, /consumers/],
    ['consumers as a string', { meta: { consumers: '3' } }, /consumers/],
    ['inactive as a string', { meta: { inactive: 'yes' } }, /inactive/],
    ['an expiration that is not a time', { meta: { expiration: 'tomorrow' } }, /expiration/],
    ['meta missing', { data: 'aGk=' }, /meta/]
  ]
  for (const [what, body, where] of cases) {
    const r = await putJson('bad', body)
    t.equal(r.status, 400, what)
    t.equal(r.body.code, 'SYNC_ERR_VALIDATION', `${what}: stable code`)
    t.match(String(r.body.detail), where, `${what}: the problem names the path`)
  }
  const get = await fetch(`${objects}/conf/bad`, { headers: admin })
  t.equal(get.status, 404, 'none of them was stored')
})

t.test('Open Horizon\'s Go zero values are accepted: nulls, empty strings, consumers 0 stored as 1', async (t) => {
  const meta = { objectID: 'go1', objectType: 'conf', destinationOrgID: 'org1', destinationID: '', destinationType: 'edge', destinationsList: null, destinationPolicy: null, expiration: '', version: '', activationTime: '', consumers: 0, instanceID: 0, doNotSend: false, sourceDataUri: '' }
  const r = await putJson('go1', { meta, data: null })
  t.equal(r.status, 204, 'accepted')
  const got = await (await fetch(`${objects}/conf/go1`, { headers: admin })).json() as { consumers: number, destinationType: string }
  t.equal(got.consumers, 1, 'an object has at least one consumer')
  t.equal(got.destinationType, 'edge')
})

t.test('PUT data with no body stores empty data; overlong names are a 400 problem, not a 414', async (t) => {
  t.equal((await putJson('nodata', { meta: {} })).status, 204)
  const r = await fetch(`${objects}/conf/nodata/data`, { method: 'PUT', headers: admin })
  t.equal(r.status, 204, 'no body is empty data, not a storage error')
  const meta = await (await fetch(`${objects}/conf/nodata`, { headers: admin })).json() as { objectSize: number }
  t.equal(meta.objectSize, 0)
  t.equal((await putJson('x'.repeat(128), { meta: {} })).status, 204, 'a 128-character name is valid')
  for (const len of [129, 101 * 3]) {
    const long = await fetch(`${objects}/conf/${'y'.repeat(len)}`, { headers: admin })
    const body = await long.json() as { code: string }
    t.same([long.status, body.code], [400, 'SYNC_ERR_VALIDATION'], `a ${len}-character name is a 400 problem`)
    t.match(long.headers.get('content-type'), /application\/problem\+json/)
  }
  const unauth = await fetch(`${objects}/conf/${'z'.repeat(300)}`)
  t.equal(unauth.status, 401, 'authentication comes first, whatever the name')
})

t.test('the OpenAPI document lists every status each operation can answer, errors as problem+json', async (t) => {
  const spec = await (await fetch(`${css.restUrl}/api/v1/openapi.json`)).json() as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { required?: string[] } }> }> }>> }
  const put = spec.paths['/api/v1/objects/{orgID}/{objectType}/{objectID}']?.put
  t.ok(put, 'the object PUT is documented')
  for (const s of ['204', '400', '401', '403', '404', '409', '412', '413', '429', '503']) t.ok(put?.responses[s], `PUT object documents ${s}`)
  t.same(put?.responses['400']?.content?.['application/problem+json']?.schema.required, ['type', 'title', 'status', 'detail', 'code'])
  const data = spec.paths['/api/v1/objects/{orgID}/{objectType}/{objectID}/data']?.get
  for (const s of ['200', '206', '416']) t.ok(data?.responses[s], `GET data documents ${s}`)
  const undocumented = Object.entries(spec.paths).flatMap(([p, ops]) => Object.entries(ops).filter(([, op]) => op.responses['401'] === undefined).map(([m]) => `${m} ${p}`))
  t.same(undocumented, [], 'every operation documents 401')
})
