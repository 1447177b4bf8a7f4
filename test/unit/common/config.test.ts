import { readFile } from 'node:fs/promises'
import t from 'tap'
import { buildConfig, envName, loadConfig, parseConfText, redactedConfig } from '../../../src/common/config/load.js'
import { CONFIG_KEYS, configExampleText } from '../../../src/common/config/schema.js'

t.test('config - sync.conf.example is generated from the schema and in step with it', async (t) => {
  const text = await readFile(new URL('../../../sync.conf.example', import.meta.url), 'utf8')
  t.equal(text, configExampleText(), 'run `npm run build && node dist/cmd/syncctl.js config example > sync.conf.example` after changing the schema')
  for (const [key, k] of Object.entries(CONFIG_KEYS)) {
    t.match(text, `# ${k.description}.`, `${key} described`)
    t.match(text, new RegExp(`^# ${key}( |$)`, 'm'), `${key} listed`)
  }
  const listed = [...text.matchAll(/^# ([A-Z][A-Za-z]+)(?: \S+)?$/gm)].map((m) => m[1])
  t.same(listed.filter((k) => !(k! in CONFIG_KEYS)), [], 'no example key missing from the schema')
})

t.test('config - Key value format, comments, env overlay and coercion', async (t) => {
  t.same(parseConfText('# c\nNodeType ESS\n\n  ListeningPort   9000  \nNodeProperties site=A,region=n\n'), { NodeType: 'ESS', ListeningPort: '9000', NodeProperties: 'site=A,region=n' })
  t.equal(envName('NodeType'), 'NODE_TYPE')
  t.equal(envName('OrgID'), 'ORG_ID')
  t.equal(envName('MqttWsPort'), 'MQTT_WS_PORT')
  const cfg = buildConfig({ ListeningPort: '9000', LogLevel: 'warn' }, { LOG_LEVEL: 'debug', UNRELATED: 'x' }, {})
  t.equal(cfg.ListeningPort, 9000, 'string coerced to integer')
  t.equal(cfg.LogLevel, 'debug', 'env wins over file')
  t.equal(cfg.StorageProvider, 'local', 'default applied')
  t.ok(Object.isFrozen(cfg))
  t.equal(buildConfig({}, {}, {}).ListeningPort, 8080, 'CSS default port')
  t.equal(buildConfig({ NodeType: 'ESS', OrgID: 'o', DestinationType: 't', DestinationID: 'i', BrokerAddress: 'mqtt://127.0.0.1:1883' }, {}, {}).ListeningPort, 8081, 'ESS default port')
})

t.test('config - every bad key is reported at once with a stable code', async (t) => {
  const err = (() => {
    try { buildConfig({ ListeningPort: 'abc', Colour: 'red', StorageProvider: 'floppy' }, {}, {}); return undefined } catch (e) { return e as { code: string, message: string, details: string[] } }
  })()
  t.equal(err?.code, 'SYNC_ERR_CONFIG_INVALID')
  t.match(err?.message, /ListeningPort/)
  t.match(err?.message, /unknown key "Colour"/)
  t.match(err?.message, /StorageProvider/)
  t.throws(() => buildConfig({ NodeType: 'ESS' }, {}, {}), { code: 'SYNC_ERR_CONFIG_INVALID', message: /OrgID/ }, 'ESS needs its identity')
  t.throws(() => buildConfig({ StorageProvider: 'mongo' }, {}, {}), { message: /MongoUri/ })
  t.throws(() => parseConfText('ok 1\n=broken'), { code: 'SYNC_ERR_CONFIG_INVALID' })
  await t.rejects(loadConfig({ file: '/nonexistent/sync.conf' }), { code: 'SYNC_ERR_CONFIG_INVALID' })
  t.equal((await loadConfig({ file: '/nonexistent/sync.conf', optional: true, env: {} })).NodeType, 'CSS')
})

t.test('config - secrets are redacted in the summary', async (t) => {
  const cfg = buildConfig({ AdminKey: 'root', AdminSecret: 's3cret', MongoUri: 'mongodb://u:p@h/' }, {}, {})
  const r = redactedConfig(cfg)
  t.equal(r.AdminSecret, '[redacted]')
  t.equal(r.MongoUri, '[redacted]')
  t.equal(r.AdminKey, 'root')
  t.notMatch(JSON.stringify(r), /s3cret/)
})

t.test('config - the startup summary lists only the keys of its node type', async (t) => {
  const ess = redactedConfig(buildConfig({ NodeType: 'ESS', OrgID: 'o', DestinationType: 't', DestinationID: 'i', BrokerAddress: 'mqtt://127.0.0.1:1883' }, {}, {}))
  t.equal(ess.OrgID, 'o')
  t.notOk('MqttListeningPort' in ess, 'no CSS-only key in an ESS summary')
  t.notOk('MongoDbName' in ess)
  const css = redactedConfig(buildConfig({}, {}, {}))
  t.ok('MqttListeningPort' in css)
  t.notOk('NodeProperties' in css, 'no ESS-only key in a CSS summary')
})

/**
 * Every conditional rule of the schema, given as sync.conf text values and as environment
 * strings: both arrive as strings, and the rule must fire on the coerced value.
 */
t.test('config - every conditional rule fires on file values and on env strings', async (t) => {
  const ess = { NodeType: 'ESS', OrgID: 'o', DestinationType: 't', DestinationID: 'i', BrokerAddress: 'mqtt://127.0.0.1:1883' }
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['ESS needs its identity and broker', { NodeType: 'ESS' }, /OrgID|DestinationType|BrokerAddress/],
    ['mongo needs MongoUri', { StorageProvider: 'mongo' }, /MongoUri/],
    ['a certificate needs its key', { ServerCertificate: 'c.pem' }, /ServerKey/],
    ['a key needs its certificate', { ServerKey: 'k.pem' }, /ServerCertificate/],
    ['a client certificate needs its key and CA', { ...ess, ClientCertificate: 'c.pem' }, /ClientKey|CaCertificate/],
    ['an mqtts listener needs a certificate', { MqttTlsListeningPort: '8883' }, /ServerCertificate/],
    ['CSS RequireTls needs a certificate and an mqtts port', { NodeType: 'CSS', RequireTls: 'true' }, /ServerCertificate|MqttTlsListeningPort/],
    ['ESS RequireTls refuses a plain broker address', { ...ess, RequireTls: 'true' }, /BrokerAddress/],
    ['an external broker needs its address', { NodeType: 'CSS', BrokerMode: 'external' }, /BrokerAddress/]
  ]
  for (const [rule, values, names] of cases) {
    t.throws(() => buildConfig(values, {}, {}), { code: 'SYNC_ERR_CONFIG_INVALID', message: names }, `${rule} (sync.conf)`)
    const env = Object.fromEntries(Object.entries(values).map(([k, v]) => [envName(k), v]))
    t.throws(() => buildConfig({}, env, {}), { code: 'SYNC_ERR_CONFIG_INVALID', message: names }, `${rule} (environment)`)
  }
  const tls = { ...ess, BrokerAddress: 'mqtts://127.0.0.1:8883' }
  t.equal(buildConfig({}, Object.fromEntries(Object.entries({ ...tls, RequireTls: 'true' }).map(([k, v]) => [envName(k), v])), {}).RequireTls, true, 'RequireTls with mqtts:// is fine')
  t.equal(buildConfig({ ...ess, RequireTls: 'false' }, {}, {}).RequireTls, false, 'RequireTls false allows mqtt://')
})
