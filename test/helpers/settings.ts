/** A fresh in-memory settings table (what signing keys are kept in). */
export { memorySettings } from '../../src/storage/index.js'
