import { generateKeyPairSync } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { OrgSigningKeys } from '../../../src/security/signing.js'
import { memorySettings } from '../../../src/storage/index.js'

t.test('a burst of first uses of an org makes one signing key, not one per caller', async (t) => {
  const settings = memorySettings()
  const a = new OrgSigningKeys(settings)
  const b = new OrgSigningKeys(settings) // a second CSS instance on the same store
  const seen = await Promise.all(Array.from({ length: 32 }, async (_, i) => await (i % 2 === 0 ? a : b).publicKey('org1')))
  t.equal(new Set(seen).size, 1, 'every concurrent caller, on either instance, got the same key')
  t.equal(await new OrgSigningKeys(settings).publicKey('org1'), seen[0], 'the stored key is the one handed out')
})

t.test('a rotation on one instance reaches the other; the trust statement is signed by the old key', async (t) => {
  const settings = memorySettings()
  const a = new OrgSigningKeys(settings)
  const b = new OrgSigningKeys(settings)
  const first = await b.publicKey('org1')
  const r = await a.rotate('org1')
  t.not(r.publicKey, first)
  t.equal(r.trustSig.keyId, first.split(':')[0], 'signed by the key it replaces')
  t.equal(await new OrgSigningKeys(settings).publicKey('org1'), r.publicKey, 'a fresh instance uses the new key')
  t.same((await a.list('org1')).map((k) => k.current), [true, false], 'the old key stays listed')
  // b cached the old key; it looks again within seconds (RECHECK_MS), never signs with a stale one forever.
  const until = Date.now() + 10_000
  while ((await b.publicKey('org1')) !== r.publicKey && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(await b.publicKey('org1'), r.publicKey, 'the other instance moved to the new key')
})

t.test('a key kept in a file by an older release is adopted, not replaced', async (t) => {
  const dir = t.testdir()
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const current = {
    keyId: 'legacy01',
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    created: '2026-01-01T00:00:00.000Z'
  }
  // What the file-based release wrote under the CSS's data folder.
  await writeFile(path.join(dir, 'org1.json'), JSON.stringify({ current, previous: [] }))
  const keys = new OrgSigningKeys(memorySettings(), dir)
  t.equal(await keys.publicKey('org1'), `legacy01:${current.publicKey}`, 'edges enrolled with the old key keep trusting what is sent')
  t.equal(await new OrgSigningKeys(memorySettings()).publicKey('org2') === `legacy01:${current.publicKey}`, false)
})
