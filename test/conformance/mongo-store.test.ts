import t from 'tap'
import { openMongoStore } from '../../src/storage/index.js'
import { requireBinary } from '../helpers/binaries.js'
import { startFerretDb } from '../../harness/ferretdb.js'
import { storeConformance } from './store-suite.js'

// A real MongoDB-wire server: FerretDB (SQLite backend) started here, or SYNC_TEST_MONGODB_URI.
let uri = process.env.SYNC_TEST_MONGODB_URI
if (uri === undefined) {
  const bin = requireBinary(t, 'ferretdb', 'run .ci/install-ferretdb.sh')
  if (bin !== undefined) {
    const db = await startFerretDb(bin)
    t.teardown(() => db.stop())
    uri = db.uri
  }
}
if (uri !== undefined) {
  let n = 0
  const base = uri
  storeConformance(t, 'mongo-store', async (opts) => await openMongoStore({ ...opts, uri: base, dbName: `conf_${process.pid}_${n++}` }))
}
