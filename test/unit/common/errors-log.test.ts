import { readFile } from 'node:fs/promises'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { ERROR_TITLES, SyncError, SyncErrorCode, StorageError } from '../../../src/common/errors.js'
import { createLogger } from '../../../src/common/log.js'

t.test('errors - codes are unique, prefixed, and match the README table both ways', async (t) => {
  const codes = Object.values(SyncErrorCode)
  t.equal(new Set(codes).size, codes.length)
  for (const [k, v] of Object.entries(SyncErrorCode)) t.equal(v, `SYNC_ERR_${k}`)
  t.same(Object.keys(ERROR_TITLES).sort(), [...codes].sort(), 'every code has a title')
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8')
  const inReadme = [...readme.matchAll(/^\| `(SYNC_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1])
  t.same([...inReadme].sort(), [...codes].sort(), 'README error table lists exactly the codes')
})

t.test('errors - blame classes keep code and cause', async (t) => {
  const cause = new Error('disk')
  const e = new StorageError('Cannot write', { cause })
  t.equal(e.code, 'SYNC_ERR_STORAGE')
  t.equal(e.name, 'StorageError')
  t.equal(e.cause, cause)
  t.ok(e instanceof SyncError)
})

t.test('log - JSON lines with child bindings, err with cause chain, secrets redacted', async (t) => {
  const out = new PassThrough()
  const lines: string[] = []
  out.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)))
  const log = createLogger({ level: 'debug', stream: out }).child({ component: 'test' })
  log.error('Failed to deliver', { err: new StorageError('outer', { cause: new Error('inner') }), objectId: 'o1', password: 'hunter2', nested: { secret: 'x', ok: 1 } })
  log.debug('dbg')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(lines.length, 2)
  const rec = JSON.parse(lines[0]!)
  t.equal(rec.level, 'error')
  t.equal(rec.component, 'test')
  t.equal(rec.err.code, 'SYNC_ERR_STORAGE')
  t.equal(rec.err.cause.message, 'inner')
  t.equal(rec.password, '[redacted]')
  t.equal(rec.nested.secret, '[redacted]')
  t.equal(rec.nested.ok, 1)
  t.notMatch(lines.join('\n'), /hunter2/)
})
