/** `npm run bench [-- <name> ...]`: runs the named benchmarks (default: all). */
import { runFanoutBench } from './fanout.js'
import { runEmsBench } from './ems.js'
import { runLargeBench } from './large.js'
import { runStoreBench } from './store.js'

const BENCHES: Record<string, () => Promise<void>> = {
  store: async () => { await runStoreBench((process.env.STORE_BACKENDS ?? 'local,mongo').split(',')) },
  ems: async () => { await runEmsBench(Number(process.env.EMS_EDGES ?? 100)) },
  large: async () => { await runLargeBench((process.env.LARGE_BENCH_STORES ?? 'local,mongo').split(',') as Array<'local' | 'mongo'>) },
  fanout: async () => { await runFanoutBench((process.env.FANOUT_SIZES ?? '100,1000').split(',').map(Number)) }
}

const names = process.argv.slice(2)
for (const n of names.length === 0 ? Object.keys(BENCHES) : names) {
  const b = BENCHES[n]
  if (b === undefined) {
    process.stderr.write(`Unknown benchmark "${n}". Known: ${Object.keys(BENCHES).join(', ')}\n`)
    process.exit(2)
  }
  await b()
}
