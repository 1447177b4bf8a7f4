/**
 * Requests written byte for byte as Open Horizon's Go client (`edge-sync-service-client`) sends
 * them: JSON bodies with no Content-Type header at all, Go's default headers, Go's zero values in
 * the metadata struct. Sent with node:http, so nothing adds a header the Go client does not send.
 */
import http from 'node:http'
import path from 'node:path'
import t from 'tap'
import { ADMIN, startCss } from '../helpers/cluster.js'

const css = await startCss(t, path.join(t.testdir(), 'css'), { MaxJsonBodySize: 65536 })
const base = new URL(css.restUrl)

/** One request as Go's net/http writes it: no Content-Type unless the caller set one. */
async function goRequest (method: string, urlPath: string, body?: Buffer, contentType?: string): Promise<{ status: number, body: string }> {
  const headers: Record<string, string> = {
    'User-Agent': 'Go-http-client/1.1',
    Authorization: `Basic ${Buffer.from(`${ADMIN.key}:${ADMIN.secret}`).toString('base64')}`,
    'Accept-Encoding': 'gzip'
  }
  if (body !== undefined) headers['Content-Length'] = String(body.length)
  if (contentType !== undefined) headers['Content-Type'] = contentType
  return await new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path: urlPath, headers }, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** The Go client's `MetaData` struct as encoding/json writes it: every field, zero values included. */
function goMeta (id: string): Record<string, unknown> {
  return {
    objectID: id,
    objectType: 'model',
    destinationOrgID: 'org1',
    destinationID: '',
    destinationType: 'edge',
    destinationsList: null,
    destinationPolicy: null,
    expiration: '',
    version: '1.0',
    description: '',
    link: '',
    inactive: false,
    activationTime: '',
    doNotSend: false,
    noData: false,
    metaOnly: false,
    destinationDataUri: '',
    sourceDataUri: '',
    consumers: 0,
    autodelete: false,
    originID: '',
    originType: '',
    deleted: false,
    instanceID: 0,
    dataID: 0,
    objectSize: 0,
    chunkSize: 0,
    hashAlgorithm: '',
    publicKey: '',
    signature: '',
    ownerID: '',
    public: false,
    lastUpdate: '0001-01-01T00:00:00Z'
  }
}

t.test('UpdateObject: a JSON body with no Content-Type is read as JSON', async (t) => {
  const r = await goRequest('PUT', '/api/v1/objects/org1/model/m1', Buffer.from(JSON.stringify({ meta: goMeta('m1'), data: null })))
  t.equal(r.status, 204, r.body)
  const meta = JSON.parse((await goRequest('GET', '/api/v1/objects/org1/model/m1')).body) as { consumers: number, version: string }
  t.same([meta.version, meta.consumers], ['1.0', 1], 'stored, with consumers 0 read as 1')
})

t.test('UpdateObjectData: a body with no Content-Type on the data route stays raw bytes', async (t) => {
  const bytes = Buffer.from('{"not":"parsed as JSON"}')
  t.equal((await goRequest('PUT', '/api/v1/objects/org1/model/m1/data', bytes)).status, 204)
  const back = await goRequest('GET', '/api/v1/objects/org1/model/m1/data')
  t.equal(back.body, bytes.toString(), 'the data is exactly the bytes sent')
})

t.test('AddUsersToACL: no Content-Type; the all-types key lists as "*"', async (t) => {
  const users = [{ ACLUserType: 'user', Username: 'alice', ACLRole: 'aclWriter' }]
  t.equal((await goRequest('PUT', '/api/v1/security/objects/org1', Buffer.from(JSON.stringify({ action: 'add', users })))).status, 204)
  t.equal((await goRequest('PUT', '/api/v1/security/objects/org1/model', Buffer.from(JSON.stringify({ action: 'add', users })))).status, 204)
  const all = JSON.parse((await goRequest('GET', '/api/v1/security/objects/org1')).body) as unknown[]
  t.same(all, users, 'no key: the all-types entries')
  const keys = JSON.parse((await goRequest('GET', '/api/v1/security/objects/org1?all_keys=true')).body) as string[]
  t.same(keys.sort(), ['*', 'model'], 'all_keys: the all-types key is "*"')
})

t.test('malformed or oversize bodies without Content-Type are clear 400/413 problems', async (t) => {
  const bad = await goRequest('PUT', '/api/v1/objects/org1/model/m2', Buffer.from('{"meta": '))
  t.same([bad.status, (JSON.parse(bad.body) as { code: string }).code], [400, 'SYNC_ERR_BAD_JSON'])
  const big = await goRequest('PUT', '/api/v1/objects/org1/model/m2', Buffer.alloc(100_000, 'x'))
  t.equal(big.status, 413)
})
