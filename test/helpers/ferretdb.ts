export { startFerretDb, type FerretDb } from '../../bench/lib/ferretdb.js'
