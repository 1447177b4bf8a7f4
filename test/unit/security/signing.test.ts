import { readdir } from 'node:fs/promises'
import t from 'tap'
import { OrgSigningKeys } from '../../../src/security/signing.js'

t.test('a burst of first uses of an org makes one signing key, not one per caller', async (t) => {
  const dir = t.testdir()
  const keys = new OrgSigningKeys(dir)
  const seen = await Promise.all(Array.from({ length: 32 }, async () => await keys.publicKey('org1')))
  t.equal(new Set(seen).size, 1, 'every concurrent caller got the same key')
  t.same(await readdir(dir), ['org1.json'], 'one key file, no temporary file left')
  t.equal(await new OrgSigningKeys(dir).publicKey('org1'), seen[0], 'the saved key is the one handed out')
})
