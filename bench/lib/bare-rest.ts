/**
 * The limit for REST reads on this machine (issue #22): a bare Fastify server with one GET route
 * shaped like the CSS's metadata route, behind the same Basic-auth check (our Authenticator over
 * an in-memory user table holding the bench admin, scrypt-hashed as the CSS stores it), answering
 * a fixed body (the CSS's own answer, passed in BARE_BODY). Run as its own process, as the CSS is;
 * prints `ready <port>`.
 */
import Fastify from 'fastify'
import { Authenticator, parseBasicAuth } from '../../src/security/authenticator.js'
import { hashSecret } from '../../src/security/secrets.js'
import { UserTable, type UserTableData } from '../../src/storage/memory/user-table.js'

const data: UserTableData = { users: {}, acls: {} }
const users = new UserTable(() => data, async () => {})
const secretHash = await hashSecret('bench-secret')
await users.put({ appKey: 'bench', orgId: 'bench', role: 'syncAdmin', secretHash, disabled: false, created: new Date().toISOString() })
const auth = new Authenticator(users)
const body = process.env.BARE_BODY ?? '{}'

const app = Fastify({ logger: false })
app.addHook('onRequest', async (req, reply) => {
  const creds = parseBasicAuth(req.headers.authorization)
  const who = creds === undefined ? undefined : await auth.check(creds.key, creds.secret)
  if (who === undefined) await reply.code(401).send({ error: 'unauthorized' })
})
app.get('/api/v1/objects/:orgID/:objectType/:objectID', async (_req, reply) => {
  await reply.type('application/json').send(body)
})
await app.listen({ host: '127.0.0.1', port: 0 })
const addr = app.server.address()
process.stdout.write(`ready ${typeof addr === 'object' && addr !== null ? addr.port : 0}\n`)
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0))
})
