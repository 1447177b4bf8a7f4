/** Resumable Content-Range uploads into the CSS: a piece cut off mid-body is re-sent; the object goes out only when complete and verified. */
import { createHash } from 'node:crypto'
import http from 'node:http'
import t from 'tap'
import { ADMIN, APP, basic, startCss, startEss, waitFor } from '../helpers/cluster.js'
import { expectedBytes } from '../helpers/bytes.js'

const MiB = 1024 * 1024
const TOTAL = 8 * MiB
const root = t.testdir()
const css = await startCss(t, `${root}/css`)
const ess = await startEss(t, css, `${root}/ess`, { org: 'org1', type: 'edge', id: 'n1' })
const admin = { authorization: basic(ADMIN) }
const url = `${css.restUrl}/api/v1/objects/org1/firmware/fw`
const data = expectedBytes(0, TOTAL - 1)
const sha = createHash('sha256').update(data).digest('hex')

async function piece (start: number, end: number, extra: Record<string, string> = {}): Promise<Response> {
  return await fetch(`${url}/data`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/octet-stream', 'content-range': `bytes ${start}-${end}/${TOTAL}`, ...extra }, body: data.subarray(start, end + 1) })
}

/** Sends a piece's headers and part of its body, then breaks the connection. */
async function brokenPiece (start: number, end: number, sendBytes: number): Promise<void> {
  const u = new URL(`${url}/data`)
  await new Promise<void>((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'PUT', headers: { ...admin, 'content-type': 'application/octet-stream', 'content-range': `bytes ${start}-${end}/${TOTAL}`, 'content-length': String(end - start + 1) } })
    req.on('error', () => { resolve() })
    req.write(data.subarray(start, start + sendBytes), () => { setTimeout(() => { req.destroy(); resolve() }, 100) })
  })
}

t.test('upload - interrupted at 50% resumes from 50%; published only when complete and verified', async (t) => {
  t.equal((await fetch(url, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationID: 'n1', destinationType: 'edge' } }) })).status, 204)
  for (let off = 0; off < TOTAL / 2; off += MiB) {
    const r = await piece(off, off + MiB - 1, off === 0 ? { 'x-data-sha256': sha } : {})
    t.equal(r.status, 202, `piece at ${off / MiB} MiB accepted, upload incomplete`)
  }
  await brokenPiece(TOTAL / 2, TOTAL / 2 + MiB - 1, 300_000)
  // Barrier: the CSS says no piece is being received any more (the broken one was dealt with).
  const st = await waitFor('the broken piece dealt with', async () => {
    const u = await (await fetch(`${url}/upload`, { headers: admin })).json() as { received: number, total: number, receiving: boolean }
    return u.receiving ? undefined : u
  })
  t.same(st, { received: TOTAL / 2, total: TOTAL, receiving: false }, 'the broken piece stored nothing: resume from 50%')
  const wrong = await piece(TOTAL / 2 + MiB, TOTAL / 2 + 2 * MiB - 1)
  t.equal(wrong.status, 409, 'a piece at the wrong offset is refused')
  t.equal(((await wrong.json()) as { code: string }).code, 'SYNC_ERR_CONFLICT')
  t.equal(((await (await fetch(url, { headers: admin })).json()) as { status: string }).status, 'notReady', 'nothing published mid-upload')
  let last: Response | undefined
  for (let off = TOTAL / 2; off < TOTAL; off += MiB) last = await piece(off, off + MiB - 1)
  t.equal(last?.status, 204, 'the last piece completes the object')
  const onEdge = await waitFor('fw on the edge', async () => {
    const r = await fetch(`${ess.restUrl}/api/v1/objects/firmware/fw/data`, { headers: { authorization: basic(APP) } })
    return r.status === 200 ? Buffer.from(await r.arrayBuffer()) : undefined
  }, 30_000)
  t.equal(createHash('sha256').update(onEdge).digest('hex'), sha, 'the edge holds the exact bytes')
})

t.test('upload - a completed upload whose data does not match the announced sha256 is refused and not published', async (t) => {
  const bad = 'f'.repeat(64)
  for (let off = 0; off < TOTAL - MiB; off += MiB) t.equal((await piece(off, off + MiB - 1, off === 0 ? { 'x-data-sha256': bad } : {})).status, 202)
  const r = await piece(TOTAL - MiB, TOTAL - 1)
  t.equal(r.status, 400)
  t.match(await r.text(), /sha256/)
  const meta = await (await fetch(url, { headers: admin })).json() as { dataHash: string }
  t.equal(meta.dataHash, sha, 'the object still carries the previous, verified data')
  t.equal((await fetch(`${url}/data`, { method: 'PUT', headers: { ...admin, 'content-range': 'bytes 5-1/10', 'content-type': 'application/octet-stream' }, body: 'x' })).status, 400, 'a malformed Content-Range is a 400')
})
