import t from 'tap'
import { generateSecret, hashGeneratedSecret, hashSecret, parseBasicAuth, verifySecret } from '../../../src/security/index.js'

t.test('secrets - scrypt and generated-token hashes verify only the right secret', async (t) => {
  const chosen = await hashSecret('correct horse')
  t.match(chosen, /^scrypt\$/)
  t.equal(await verifySecret('correct horse', chosen), true)
  t.equal(await verifySecret('correct hors', chosen), false)
  const token = generateSecret()
  t.ok(token.length >= 32, 'generated secrets carry at least 192 bits')
  const h = hashGeneratedSecret(token)
  t.match(h, /^sha256\$/)
  t.notMatch(h, token, 'the secret itself is not stored')
  t.equal(await verifySecret(token, h), true)
  t.equal(await verifySecret(token + 'x', h), false)
  t.not(hashGeneratedSecret(token), h, 'salted')
  t.equal(await verifySecret('x', 'garbage'), false)
})

t.test('secrets - Basic auth parsing', async (t) => {
  t.same(parseBasicAuth('Basic ' + Buffer.from('org/edge/n1:s:e:c').toString('base64')), { key: 'org/edge/n1', secret: 's:e:c' })
  t.equal(parseBasicAuth('Bearer x'), undefined)
  t.equal(parseBasicAuth('Basic ' + Buffer.from('nocolon').toString('base64')), undefined)
  t.equal(parseBasicAuth(undefined), undefined)
})
