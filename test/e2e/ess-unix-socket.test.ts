/**
 * The ESS's local API on a Unix socket (`ListeningType unix`, Open Horizon's setting): an edge app
 * speaks HTTP over the socket (as Open Horizon's clients do with `unix`), polls, reads and consumes
 * an object the CSS sent; the socket file is private to the ESS's user and group, and a stale one
 * left by a crash does not stop the next start.
 */
import http from 'node:http'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'

async function overSocket (socketPath: string, method: string, urlPath: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: urlPath, headers: { authorization: basic(APP), host: 'unix' } }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

t.test('an edge app uses the ESS over its Unix socket', async (t) => {
  const root = t.testdir()
  // Socket paths are short (107 bytes): the test folder is too deep for one.
  const sockDir = await mkdtemp(path.join(tmpdir(), 'ess-'))
  t.teardown(async () => { await rm(sockDir, { recursive: true, force: true }) })
  const socket = path.join(sockDir, 'ess.sock')
  await writeFile(socket, 'stale') // a leftover of a crashed ESS
  const css = await startCss(t, path.join(root, 'css'))
  const ess = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'u1' }, undefined, {
    ListeningType: 'unix', ListeningAddress: socket
  })
  t.equal(ess.restUrl, `http+unix://${encodeURIComponent(socket)}`)
  t.equal((await stat(socket)).mode & 0o777, 0o660, 'the socket is private to the ESS\'s user and group')
  t.equal((await overSocket(socket, 'GET', '/api/v1/objects/conf')).status, 404, 'nothing yet')
  const put = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/c1`, {
    method: 'PUT',
    headers: { authorization: basic(ADMIN), 'content-type': 'application/json' },
    body: JSON.stringify({ meta: { destinationType: 'edge' }, data: Buffer.from('over a socket').toString('base64') })
  })
  t.equal(put.status, 204)
  await waitFor('c1 listed over the socket', async () => (await overSocket(socket, 'GET', '/api/v1/objects/conf')).status === 200 ? true : undefined)
  t.equal((await overSocket(socket, 'GET', '/api/v1/objects/conf/c1/data')).body, 'over a socket')
  t.equal((await overSocket(socket, 'PUT', '/api/v1/objects/conf/c1/consumed')).status, 204)
  const unauth = await new Promise<number>((resolve) => {
    http.request({ socketPath: socket, path: '/api/v1/objects/conf' }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).end()
  })
  t.equal(unauth, 401, 'the socket needs credentials like the TCP API')
})

t.test('a unix listener needs an absolute socket path', async (t) => {
  const { buildConfig } = await import('../../src/common/config/load.js')
  t.throws(() => buildConfig({}, {}, { NodeType: 'ESS', OrgID: 'o', DestinationType: 't', DestinationID: 'i', BrokerAddress: 'mqtt://127.0.0.1:1', ListeningType: 'unix', ListeningAddress: '127.0.0.1' }),
    { code: 'SYNC_ERR_CONFIG_INVALID', message: /ListeningAddress/ })
  t.throws(() => buildConfig({}, {}, { NodeType: 'ESS', OrgID: 'o', DestinationType: 't', DestinationID: 'i', BrokerAddress: 'mqtt://127.0.0.1:1', ListeningType: 'secure-unix', ListeningAddress: '/tmp/x.sock' }),
    { code: 'SYNC_ERR_CONFIG_INVALID', message: /ServerCertificate/ })
})

t.test('a socket path too long for the kernel is refused at start, not cut short', async (t) => {
  const root = t.testdir()
  const css = await startCss(t, path.join(root, 'css'))
  await t.rejects(startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'u2' }, undefined, {
    ListeningType: 'unix', ListeningAddress: `/tmp/${'x'.repeat(120)}.sock`
  }), { code: 'SYNC_ERR_CONFIG_INVALID', message: /longer than a Unix socket path/ })
})
