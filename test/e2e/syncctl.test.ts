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
  t.match((await run(['acl', 'list', 'org1'])).out, /^KIND\s+TYPE\nobjects\s+conf\ndestinations\s+edge\n$/,
    'object and destination ACLs, each with its kind')
  t.match((await run(['acl', 'list', 'org1', 'edge'])).out, /destinations\s+user\s+\*\s+address/, 'a destination ACL\'s role is "address"')
  const users = JSON.parse((await run(['acl', 'list', 'org1', 'conf', '--json'])).out) as Array<{ Username: string, ACLRole: string }>
  t.same(users, [{ kind: 'objects', ACLUserType: 'user', Username: 'bob', ACLRole: 'aclWriter', role: 'writer' }])
  t.equal((await run(['acl', 'remove', 'org1', 'conf', 'bob'])).code, 0)
  t.same(JSON.parse((await run(['acl', 'list', 'org1', 'conf', '--json'])).out), [])
})

t.test('syncctl - nodes: enroll (with a Mosquitto password line), list, mosquitto-acl, remove', async (t) => {
  const passwd = path.join(root, 'passwd')
  const r = await run(['nodes', 'enroll', 'org1', 'edge', 'n1', '--mosquitto-passwd', passwd])
  const port = new URL(css.mqttUrls[0] ?? '').port
  t.match(r.out, new RegExp(`^NodeType ESS\\nOrgID org1\\nDestinationType edge\\nDestinationID n1\\nNodeSecret \\S+\\nSigningKey [0-9a-f]+:\\S+\\nBrokerAddress mqtt://127\\.0\\.0\\.1:${port}\\n$`),
    'the ESS snippet is complete: identity, secret, signing key and broker address')
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
  t.match(put.out, /^stored org1\/conf\/site instance 1 \(14 bytes\)\n$/, 'a new object with its data: one instance')
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

t.test('syncctl - every command takes --json; --version', async (t) => {
  const file = path.join(root, 'j.json')
  await writeFile(file, '{"a":1}')
  const enrolled = JSON.parse((await run(['nodes', 'enroll', 'org1', 'edge', 'j1', '--json'])).out) as { secret: string, brokerUrls: string[] }
  t.match(enrolled.secret, /\S{20,}/, 'nodes enroll --json: the CSS answer')
  const put = JSON.parse((await run(['objects', 'put', 'org1', 'conf', 'j', '--file', file, '--dest-type', 'edge', '--json'])).out) as { instanceID: number }
  t.type(put.instanceID, 'number', 'objects put --json: the stored metadata')
  const history = await (await fetch(`${css.restUrl}/api/v1/objects/org1/conf/j/history`, { headers: { authorization: basic(ADMIN) } })).json() as unknown[]
  t.equal(history.length, 1, 'a new object with data from a file: one instance, not two')
  const rotated = JSON.parse((await run(['keys', 'rotate', 'org1', '--json'])).out) as { publicKey: string }
  t.match(rotated.publicKey, /^[0-9a-f]+:/, 'keys rotate --json')
  const example = JSON.parse((await run(['config', 'example', '--json'])).out) as { output: string }
  t.match(example.output, /NodeType/, 'a text-only command wraps its text')
  const { createProgram: fresh } = await import('../../src/admin/program.js')
  const leaves: string[] = []
  const walk = (c: ReturnType<typeof fresh>, name: string): void => {
    if (c.commands.length === 0) {
      if (!c.options.some((o) => o.long === '--json')) leaves.push(name)
      return
    }
    for (const sub of c.commands) walk(sub, `${name} ${sub.name()}`.trim())
  }
  walk(fresh({ stdout: () => {}, stderr: () => {}, fetch, env: {} }), '')
  t.same(leaves, [], 'no command without --json')
  t.match((await run(['--version'])).out, /^\d+\.\d+\.\d+\n$/)
})

t.test('syncctl - validation refusals list each edge with path and rule', async (t) => {
  const layer = path.join(root, 'bad-layer.json')
  const { sampleEmsConfig } = await import('../helpers/ems.js')
  const bad = sampleEmsConfig() as { core_cycle: { period_ms: number } }
  bad.core_cycle.period_ms = 5
  await writeFile(layer, JSON.stringify(bad))
  // An HTTP edge joins by heartbeat, so the layer reaches someone.
  const v1 = JSON.parse((await run(['nodes', 'enroll', 'org1', 'edge', 'v1', '--json'])).out) as { secret: string }
  const hb = await fetch(`${css.restUrl}/api/v1/edges/v1/heartbeat`, {
    method: 'POST',
    headers: { authorization: basic({ key: 'org1/edge/v1', secret: v1.secret }), 'content-type': 'application/json' },
    body: JSON.stringify({ sync_status: 'pending' })
  })
  t.equal(hb.status, 200)
  const r = await run(['ems', 'layer-set', 'org1', 'org', layer])
  t.equal(r.code, 5)
  t.match(r.err, /^\s+v1\s+\/core_cycle\/period_ms\s+schema\.minimum\s+/m, 'the failing edge, path and rule')
})

t.test('syncctl - cluster status: one instance, leading, with its connected edges', async (t) => {
  const r = await run(['cluster', 'status'])
  t.equal(r.code, 0, r.err)
  t.match(r.out, /^lease: (\S+) \(term \d+\); answered by \1\n/, 'the only instance holds the lease')
  t.match(r.out, /\n\S+\s+alive\s+yes\s+0\s+http:\/\/127\.0\.0\.1:\d+/, 'alive, leading, no edge connected')
  const json = JSON.parse((await run(['cluster', 'status', '--json'])).out) as { instances: Array<{ connectedEdges: number }> }
  t.equal(json.instances.length, 1)
  t.equal(json.instances[0]?.connectedEdges, 0)
})
