/** `npm run bench [-- <name> ...]`: runs the named benchmarks (default: all). Settings come from the environment (bench/README.md). */
import { runClusterBench } from './cluster.js'
import { runFanoutBench, runRawBench } from './fanout.js'
import { runEmsBench } from './ems.js'
import { runRolloutBench } from './rollout.js'
import { runFootprintBench } from './footprint.js'
import { runLargeBench } from './large.js'
import { runRestBench, runRestMetricsBench } from './rest.js'
import { runStoreBench } from './store.js'
import { runStormBench } from './storm.js'
import type { Variant } from './lib/css.js'

const env = process.env
/** `--contended` (or the name `fanout-contended`): fan-out with a CPU load beside it (#22). */
let contended = process.argv.includes('--contended')
const list = (v: string | undefined, d: string): string[] => (v ?? d).split(',').map((s) => s.trim()).filter((s) => s !== '')
const sizes = (v: string | undefined, d: string): number[] => list(v, d).map(Number)
const variants = (v: string | undefined, d: string): Variant[] => list(v, d) as Variant[]

const BENCHES: Record<string, () => Promise<void>> = {
  store: async () => { await runStoreBench(list(env.STORE_BACKENDS, 'local,mongo')) },
  fanout: async () => {
    if (contended) {
      // Our fan-out and the raw one, each beside BENCH_HOGS (1) processes spinning on a core.
      await runFanoutBench(sizes(env.FANOUT_SIZES, '1000,10000'), variants(env.FANOUT_VARIANTS, 'aedes+local'), true, Number(env.BENCH_HOGS ?? 1))
      return
    }
    await runFanoutBench(sizes(env.FANOUT_SIZES, '100,1000,10000'), variants(env.FANOUT_VARIANTS, 'aedes+local'))
    // FerretDB answers about 50 delivery updates a second: 1,000 edges did not finish in 15 minutes.
    if (env.FANOUT_VARIANTS === undefined) await runFanoutBench(sizes(env.FANOUT_MONGO_SIZES, '100'), ['mosquitto+mongo'])
  },
  cluster: async () => { await runClusterBench(sizes(env.CLUSTER_SIZES, '1000')) },
  raw: async () => { await runRawBench(sizes(env.RAW_SIZES, '100,1000,10000'), variants(env.RAW_VARIANTS, 'aedes+local,mosquitto+mongo')) },
  storm: async () => { await runStormBench(sizes(env.STORM_SIZES, '1000,10000'), variants(env.STORM_VARIANTS, 'aedes+local')) },
  ems: async () => { await runEmsBench(Number(env.EMS_EDGES ?? 100)) },
  rollout: async () => { await runRolloutBench(Number(env.ROLLOUT_EDGES ?? 1000)) },
  footprint: async () => { await runFootprintBench(Number(env.FOOTPRINT_TOGETHER ?? 10), Number(env.FOOTPRINT_IDLE_S ?? 3)) },
  rest: async () => { await runRestBench(variants(env.REST_VARIANTS, 'aedes+local,mosquitto+mongo'), Number(env.REST_CONCURRENCY ?? 32), Number(env.REST_SECONDS ?? 10)) },
  'rest-metrics': async () => { await runRestMetricsBench(variants(env.REST_VARIANTS, 'aedes+local')[0] ?? 'aedes+local', Number(env.REST_ROUNDS ?? 3), Number(env.REST_CONCURRENCY ?? 32), Number(env.REST_SECONDS ?? 10)) },
  // 1 GiB to 10 edges on FerretDB takes hours: mongo only when asked (LARGE_BENCH_STORES=local,mongo).
  large: async () => { await runLargeBench(list(env.LARGE_BENCH_STORES, 'local') as Array<'local' | 'mongo'>) }
}

const names = process.argv.slice(2).filter((a) => a !== '--contended')
for (const n of names.length === 0 ? [...Object.keys(BENCHES), 'fanout-contended'] : names) {
  if (n === 'fanout-contended') {
    contended = true
    await BENCHES.fanout?.()
    contended = false
    continue
  }
  const b = BENCHES[n]
  if (b === undefined) {
    process.stderr.write(`Unknown benchmark "${n}". Known: ${Object.keys(BENCHES).join(', ')}\n`)
    process.exit(2)
  }
  await b()
}
