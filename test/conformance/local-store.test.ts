import t from 'tap'
import { openLocalStore } from '../../src/storage/index.js'
import { storeConformance } from './store-suite.js'

const root = t.testdir()
let n = 0
storeConformance(t, 'local-store', async (opts) => await openLocalStore(`${root}/s${n++}`, opts))
