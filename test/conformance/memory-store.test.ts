import t from 'tap'
import { createMemoryStore } from '../../src/storage/index.js'
import { storeConformance } from './store-suite.js'

storeConformance(t, 'memory-store', async (opts) => createMemoryStore(opts))
