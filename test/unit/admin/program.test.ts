import t from 'tap'
import { createProgram } from '../../../src/admin/program.js'
import { configExampleText } from '../../../src/common/config/schema.js'
import { ADMIN, startCss } from '../../helpers/cluster.js'

async function run (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ out: string, err: string, code: number }> {
  let out = ''
  let err = ''
  const program = createProgram({ stdout: (s) => { out += s }, stderr: (s) => { err += s }, fetch, env })
  try {
    await program.parseAsync(['node', 'syncctl', ...args])
    return { out, err, code: 0 }
  } catch (e) {
    return { out, err: err + String((e as Error).message), code: (e as { exitCode?: number }).exitCode ?? 1 }
  }
}

t.test('syncctl - help lists the commands that exist', async (t) => {
  const r = await run(['--help'])
  for (const c of ['config', 'nodes', 'objects']) t.match(r.out, new RegExp(`\\b${c}\\b`))
  t.equal((await run(['config', 'example'])).out, configExampleText())
  t.not((await run(['no-such-command'])).code, 0, 'unknown command fails')
})

t.test('syncctl - enrolls a node and lists nodes against a real CSS', async (t) => {
  const css = await startCss(t, t.testdir())
  const env = { SYNC_URL: css.restUrl, SYNC_KEY: ADMIN.key, SYNC_SECRET: ADMIN.secret }
  const r = await run(['nodes', 'enroll', 'org1', 'edge', 'n7'], env)
  t.equal(r.code, 0)
  t.match(r.out, /^NodeType ESS\nOrgID org1\nDestinationType edge\nDestinationID n7\nNodeSecret \S{20,}\nSigningKey [0-9a-f]+:\S+\nBrokerAddress mqtt:\/\/127\.0\.0\.1:\d+\n$/)
  const bad = await run(['nodes', 'list', 'org1'], { ...env, SYNC_SECRET: 'wrong' })
  t.not(bad.code, 0)
  t.match(bad.err, /401/)
  const list = await run(['nodes', 'list', 'org1', '--json'], env)
  t.same(JSON.parse(list.out), [], 'enrolled but not yet connected')
})

t.test('the ESS snippet points at the broker on the host syncctl reached, with the CA line under TLS', async (t) => {
  const { essSnippet } = await import('../../../src/admin/program.js')
  const plain = essSnippet('o', 'edge', 'n1', { secret: 's', signingKey: 'k:AA', brokerUrls: ['mqtt://0.0.0.0:1883'] }, 'http://css.example:8080')
  t.match(plain, /SigningKey k:AA\nBrokerAddress mqtt:\/\/css\.example:1883\n$/)
  t.notMatch(plain, /CaCertificate/)
  const tls = essSnippet('o', 'edge', 'n1', { secret: 's', brokerUrls: ['wss://0.0.0.0:8884/mqtt', 'mqtts://0.0.0.0:8883'] }, 'https://css.example:8443')
  t.match(tls, /BrokerAddress wss:\/\/css\.example:8884\/mqtt\nCaCertificate ca\.pem/)
})
