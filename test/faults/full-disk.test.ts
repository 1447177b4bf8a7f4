/**
 * A full disk (a small tmpfs mounted by the test as the CSS's data folder): writes fail with
 * SYNC_ERR_STORAGE, nothing of a refused write becomes visible or durable (no half data, no
 * metadata of a failed PUT, no leaked data file), and once space returns the service goes on by
 * itself and the store loads after a restart with exactly the acknowledged objects.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t from 'tap'
import type { CssHandle } from '../../src/app/css.js'
import { requireBinary } from '../helpers/binaries.js'
import { ADMIN, basic, startCss } from '../helpers/cluster.js'

function canMount (bin: string, dir: string): boolean {
  try {
    execFileSync(bin, ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const top = t
// Not under tap's fixture folder: that is removed while the mount may still be there.
const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-full-disk-'))
// Skips only where the mount binary is missing (and fails under CI=true). With mount present, a
// mount that fails (not root) is a failure: a full disk cannot be faked without it.
const mountBin = requireBinary(t, 'mount', 'apt-get install mount')
if (mountBin === undefined) {
  // reported by requireBinary
} else if (!canMount(mountBin, dir)) {
  t.fail('cannot mount a tmpfs as the CSS\'s data folder: this test needs root (as CI runs it)')
} else {
  t.teardown(async () => {
    await css.close()
    execFileSync('umount', ['-l', dir])
    await rm(dir, { recursive: true, force: true })
  })
  const admin = { authorization: basic(ADMIN) }
  let css: CssHandle = await startCss(t, path.join(dir, 'data'))
  const put = async (id: string, data?: Buffer): Promise<{ status: number, code?: string }> => {
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}`, { method: 'PUT', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ meta: { destinationType: 'edge', noData: data === undefined }, ...(data === undefined ? {} : { data: data.toString('base64') }) }) })
    const text = await r.text()
    return { status: r.status, ...(text === '' ? {} : { code: (JSON.parse(text) as { code?: string }).code }) }
  }
  const get = async (id: string): Promise<number> => (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/${id}`, { headers: admin })).status
  const filler = path.join(dir, 'filler')
  const acceptedMeta: string[] = []
  let refusedMeta: string | undefined
  let fillers = 0
  /** Takes every free page: big files first, then page by page; again after a pause, since a
   *  rename in the service (a snapshot replacing the old one) can free pages meanwhile. */
  const fill = async (): Promise<void> => {
    for (let round = 0; round < 3; round++) {
      for (const size of [64 * 1024, 4096, 1]) {
        for (;;) {
          try { await writeFile(`${filler}-${fillers++}`, Buffer.alloc(size)) } catch { break }
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const blobs = async (): Promise<string[]> => (await readdir(path.join(dir, 'data', 'css', 'store', 'blobs'))).filter((f) => f !== '.tmp')

  t.test('writes on a full disk fail with SYNC_ERR_STORAGE and leave nothing visible', async (t) => {
    t.same(await put('before', Buffer.from('kept')), { status: 204 }, 'a write with space is acknowledged')
    const blobsBefore = await blobs()
    await fill()
    const big = await put('big', Buffer.alloc(300_000, 'b'))
    t.same(big, { status: 503, code: 'SYNC_ERR_STORAGE' }, 'data that does not fit: 503 SYNC_ERR_STORAGE')
    t.equal(await get('big'), 404, 'the refused object is not served')
    // The object table is a journal: an append may still fit in its last page's slack, and then
    // it is durable and rightly acknowledged. Puts go on until one finds no room.
    for (let i = 0; i < 2000 && refusedMeta === undefined; i++) {
      const r = await put(`meta-${i}`)
      if (r.status === 204) acceptedMeta.push(`meta-${i}`)
      else {
        refusedMeta = `meta-${i}`
        t.same(r, { status: 503, code: 'SYNC_ERR_STORAGE' }, `metadata whose table commit fails (after ${i} that fit): 503`)
      }
    }
    t.ok(refusedMeta !== undefined, 'a metadata write is refused once the journal has no room')
    t.equal(await get(refusedMeta ?? 'x'), 404, 'and it is not served either (the table change was undone)')
    t.same(await blobs(), blobsBefore, 'no data file of a refused write was left behind')
    t.same(await readdir(path.join(dir, 'data', 'css', 'store', 'blobs', '.tmp')), [], 'no temp file either')
    const r = await fetch(`${css.restUrl}/api/v1/objects/org1/conf/before/data`, { headers: admin })
    t.equal(await r.text(), 'kept', 'acknowledged data is intact')
  })

  t.test('when space returns, writes work again and a restart loads exactly what was acknowledged', async (t) => {
    for (const f of await readdir(dir)) if (f.startsWith('filler')) await rm(path.join(dir, f))
    t.same(await put('after', Buffer.from('later')), { status: 204 }, 'the service recovered by itself')
    // The next successful commit must not make a refused change durable.
    await css.close()
    css = await startCss(top, path.join(dir, 'data')) // closed by the file's teardown
    t.same([await get('before'), await get('after'), await get('big'), await get(refusedMeta ?? 'x')], [200, 200, 404, 404], 'acknowledged objects back, refused ones absent')
    const back = await Promise.all(acceptedMeta.map(get))
    t.ok(back.every((s) => s === 200), `all ${acceptedMeta.length} metadata writes acknowledged on the full disk are back`)
  })
}
