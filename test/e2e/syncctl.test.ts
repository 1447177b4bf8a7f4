/** syncctl against a running CSS: every command group, its output and its exit codes. */
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { createProgram } from '../../src/admin/program.js'
import { ADMIN, basic, startCss } from '../helpers/cluster.js'

const root = t.testdir()
const css = await startCss(t, path.join(root, 'css'))
const env = { SYNC_URL: css.restUrl, SYNC_KEY: ADMIN.key, SYNC_SECRET: ADMIN.secret }

async function run (args: string[], e: NodeJS.ProcessEnv = env): Promise<{ out: string, err: string, code: number }> {
  let out = ''
  let err = ''
  const program = createProgram({ stdout: (s) => { out += s }, stderr: (s) => { err += s }, fetch, env: e })
  try {
    await program.parseAsync(['node', 'syncctl', ...args])
    return { out, err, code: 0 }
  } catch (x) {
    return { out, err: err + String((x as Error).message), code: (x as { exitCode?: number }).exitCode ?? 1 }
  }
}
const status = async (key: string, secret: string): Promise<number> => (await fetch(`${css.restUrl}/api/v1/destinations/org1`, { headers: { authorization: basic({ key, secret }) } })).status

t.test('syncctl - users: add, list, disable and enable (at once), rotate, remove', async (t) => {
  const add = await run(['users', 'add', 'org1', 'alice', '--role', 'orgAdmin'])
  t.equal(add.code, 0)
  const secret = /secret (\S+)/.exec(add.out)?.[1] ?? ''
  t.equal(await status('alice', secret), 200)
  t.match((await run(['users', 'list', 'org1'])).out, /^APPKEY\s+ROLE\s+DISABLED\s+CREATED\nalice\s+orgAdmin\s+false/m)
  t.equal((await run(['users', 'disable', 'org1', 'alice'])).code, 0)
  t.equal(await status('alice', secret), 401, 'a disabled key is refused immediately')
  t.equal((await run(['users', 'enable', 'org1', 'alice'])).code, 0)
  t.equal(await status('alice', secret), 200)
  const rot = await run(['users', 'rotate', 'org1', 'alice'])
  const next = /secret (\S+)/.exec(rot.out)?.[1] ?? ''
  t.equal(await status('alice', secret), 401, 'the old secret stops working at rotation')
  t.equal(await status('alice', next), 200, 'the new secret works')
  t.equal((await run(['users', 'add', 'org1', 'alice'])).code, 5, 'a duplicate key: rejected (5)')
  t.equal((await run(['users', 'remove', 'org1', 'alice'])).code, 0)
  t.equal((await run(['users', 'remove', 'org1', 'alice'])).code, 3, 'removing again: not found (3)')
  t.equal((await run(['users', 'add', 'org1', 'bob', '--role', 'king'])).code !== 0, true, 'an invalid role is a usage error')
})

t.test('syncctl - acl: add, list, remove', async (t) => {
  t.equal((await run(['acl', 'add', 'org1', 'conf', 'bob', '--role', 'writer'])).code, 0)
  t.equal((await run(['acl', 'add', 'org1', 'edge', '*', '--kind', 'destinations'])).code, 0)
  t.match((await run(['acl', 'list', 'org1'])).out, /TYPE\nconf/)
  const users = JSON.parse((await run(['acl', 'list', 'org1', 'conf', '--json'])).out) as Array<{ Username: string, ACLRole: string }>
  t.same(users, [{ ACLUserType: 'user', Username: 'bob', ACLRole: 'aclWriter' }])
  t.equal((await run(['acl', 'remove', 'org1', 'conf', 'bob'])).code, 0)
  t.same(JSON.parse((await run(['acl', 'list', 'org1', 'conf', '--json'])).out), [])
})

t.test('syncctl - nodes: enroll (with a Mosquitto password line), list, mosquitto-acl, remove', async (t) => {
  const passwd = path.join(root, 'passwd')
  const r = await run(['nodes', 'enroll', 'org1', 'edge', 'n1', '--mosquitto-passwd', passwd])
  t.match(r.out, /^NodeType ESS\nOrgID org1\nDestinationType edge\nDestinationID n1\nNodeSecret \S+\nSigningKey [0-9a-f]+:\S+\n$/)
  const { readFile } = await import('node:fs/promises')
  t.match(await readFile(passwd, 'utf8'), /^org1\/edge\/n1:\$7\$101\$/)
  t.match((await run(['nodes', 'mosquitto-acl', 'org1', '--css-user', 'css'])).out, /user org1\/edge\/n1\ntopic write sync\/v1\/org1\/edge\/n1\/up/)
  t.match((await run(['nodes', 'list', 'org1'])).out, /^NODE\s+STATE/)
  t.equal((await run(['nodes', 'remove', 'org1', 'edge', 'n1'])).code, 0)
  t.equal((await run(['nodes', 'remove', 'org1', 'edge', 'n1'])).code, 3)
})

t.test('syncctl - objects: put from a file, get, list, status, destinations, delete', async (t) => {
  const file = path.join(root, 'site.json')
  await writeFile(file, '{"limit":5000}')
  const put = await run(['objects', 'put', 'org1', 'conf', 'site', '--file', file, '--dest-type', 'edge', '--meta', '{"version":"1.2"}'])
  t.match(put.out, /^stored org1\/conf\/site instance \d+ \(14 bytes\)\n$/)
  t.match((await run(['objects', 'get', 'org1', 'conf', 'site'])).out, /version\s+1\.2/)
  t.equal((await run(['objects', 'get', 'org1', 'conf', 'site', '--data'])).out, '{"limit":5000}')
  t.match((await run(['objects', 'list', 'org1', 'conf'])).out, /conf\s+site\s+\d+\s+ready\s+14/)
  t.equal((await run(['objects', 'status', 'org1', 'conf', 'site'])).out, 'ready\n')
  t.equal((await run(['objects', 'destinations', 'org1', 'conf', 'site', '--json'])).code, 0)
  t.equal((await run(['objects', 'put', 'org1', 'conf', 'x', '--meta', '{bad'])).code, 2, 'bad --meta: usage error (2)')
  t.equal((await run(['objects', 'delete', 'org1', 'conf', 'site'])).code, 0)
  t.equal((await run(['objects', 'get', 'org1', 'conf', 'site'])).code, 3, 'gone: not found (3)')
})

t.test('syncctl - keys, audit, connection settings and exit codes', async (t) => {
  const before = JSON.parse((await run(['keys', 'list', 'org1', '--json'])).out) as Array<{ keyId: string, current: boolean }>
  t.match((await run(['keys', 'rotate', 'org1'])).out, /^SigningKey [0-9a-f]+:/)
  const after = JSON.parse((await run(['keys', 'list', 'org1', '--json'])).out) as Array<{ keyId: string, current: boolean }>
  t.not(after[0]?.keyId, before[0]?.keyId, 'a new current key')
  t.equal(after[1]?.keyId, before[0]?.keyId, 'the old key is kept, no longer current')
  const audit = JSON.parse((await run(['audit', 'org1', '--json'])).out) as Array<{ action: string, actor: string }>
  for (const a of ['user.add', 'user.disable', 'user.enable', 'user.rotate', 'user.remove', 'acl.change', 'node.enroll', 'node.remove', 'key.rotate']) {
    t.ok(audit.some((e) => e.action === a && e.actor === ADMIN.key), `audited: ${a}`)
  }
  t.equal((await run(['nodes', 'list', 'org1'], { ...env, SYNC_SECRET: 'wrong' })).code, 4, 'bad credentials: 4')
  t.equal((await run(['nodes', 'list', 'org1'], { ...env, SYNC_URL: 'http://127.0.0.1:1' })).code, 6, 'unreachable: 6')
  const profiles = path.join(root, 'syncctl.json')
  await writeFile(profiles, JSON.stringify({ profiles: { test: { url: css.restUrl, key: ADMIN.key, secret: ADMIN.secret } } }))
  t.equal((await run(['--profile', 'test', 'nodes', 'list', 'org1'], { SYNCCTL_CONFIG: profiles })).code, 0, 'a profile supplies the connection')
  t.equal((await run(['--profile', 'nope', 'nodes', 'list', 'org1'], { SYNCCTL_CONFIG: profiles })).code, 2)
  const help = await run(['--help'])
  for (const c of ['config', 'nodes', 'objects', 'users', 'keys', 'audit', 'acl', 'certs', 'Exit codes']) t.match(help.out, c)
})
