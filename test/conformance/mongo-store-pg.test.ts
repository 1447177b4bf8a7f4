import t from 'tap'
import { openMongoStore } from '../../src/storage/index.js'
import { requireBinary } from '../helpers/binaries.js'
import { startFerretDb } from '../../harness/ferretdb.js'
import { storeConformance } from './store-suite.js'

// The same contract on FerretDB over PostgreSQL: the MongoDB-wire server of the scale-out tests
// and benches (concurrent writers, unlike FerretDB on SQLite).
const bin = requireBinary(t, 'ferretdb', 'run .ci/install-ferretdb.sh')
const pg = requireBinary(t, 'postgres', 'apt-get install postgresql')
if (bin !== undefined && pg !== undefined) {
  const db = await startFerretDb(bin, { backend: 'postgresql' })
  t.teardown(() => db.stop())
  let n = 0
  storeConformance(t, 'mongo-store-pg', async (opts) => await openMongoStore({ ...opts, uri: db.uri, dbName: `conf_${process.pid}_${n++}` }))
}
