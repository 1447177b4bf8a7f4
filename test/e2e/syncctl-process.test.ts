/**
 * syncctl as a user runs it (the real executable in a child process): errors are JSON on stderr
 * when --json is given (stdout stays empty and parseable), a reader that closes the pipe early
 * (`| head`) ends it quietly, and an HTTPS CSS with an untrusted certificate names the reason and
 * the fix.
 */
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from '../../harness/ports.js'
import { ADMIN, startCss } from '../helpers/cluster.js'

const bin = fileURLToPath(new URL('../../cmd/syncctl.ts', import.meta.url))
const root = t.testdir()
const css = await startCss(t, path.join(root, 'css'))

async function sh (script: string, env: Record<string, string> = {}): Promise<{ out: string, err: string, code: number }> {
  const child = spawn('bash', ['-c', `set -o pipefail; ${script}`], {
    env: { ...process.env, SYNCCTL: `${process.execPath} ${process.execArgv.join(' ')} ${bin}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => { resolve(c ?? -1) }))
  return { out, err, code }
}
const conn = { SYNC_URL: css.restUrl, SYNC_KEY: ADMIN.key, SYNC_SECRET: ADMIN.secret }

t.test('with --json, errors are JSON on stderr with code, message and exit code', async (t) => {
  const r = await sh('$SYNCCTL nodes list org1 --json', { ...conn, SYNC_SECRET: 'wrong' })
  t.equal(r.code, 4)
  t.equal(r.out, '', 'nothing on stdout')
  const e = JSON.parse(r.err) as { error: { code: string, message: string, exitCode: number } }
  t.equal(e.error.code, 'SYNC_ERR_UNAUTHENTICATED')
  t.equal(e.error.exitCode, 4)
  t.match(e.error.message, /HTTP 401/)
  const usage = await sh('$SYNCCTL certs server --days nope h --dir /tmp/x --json', conn)
  t.equal(usage.code, 2)
  t.equal((JSON.parse(usage.err.trim().split('\n').at(-1) ?? '{}') as { error: { code: string } }).error.code, 'SYNC_ERR_USAGE')
  const plain = await sh('$SYNCCTL nodes list org1', { ...conn, SYNC_SECRET: 'wrong' })
  t.match(plain.err, /^syncctl: GET \/api\/v1\/destinations\/org1: HTTP 401 SYNC_ERR_UNAUTHENTICATED/, 'without --json: one plain line')
})

t.test('a reader that closes the pipe early ends syncctl quietly', async (t) => {
  const r = await sh('$SYNCCTL config example | head -1', conn)
  t.equal(r.code, 0, 'exit 0 through the whole pipeline')
  t.equal(r.out.split('\n').length, 2, 'one line read')
  t.notMatch(r.err, /EPIPE|Error/, 'no stack trace')
})

t.test('an unreachable CSS is named with its likely cause', async (t) => {
  const port = await freePort() // free: nothing listens there
  const r = await sh('$SYNCCTL nodes list org1', { ...conn, SYNC_URL: `http://127.0.0.1:${port}` })
  t.equal(r.code, 6)
  t.match(r.err, `Cannot reach http://127.0.0.1:${port}: connection refused: is the CSS running there?`)
})
