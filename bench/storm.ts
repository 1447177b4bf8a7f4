/**
 * Reconnect storm: N lightweight edges online and holding one object; every connection closes at
 * once, an update is published while they are away, then all N reconnect at the same moment (no
 * pacing). Reports the time until every edge is connected, online in the CSS again, and resynced
 * (holds the update: consumed at the CSS), with the CSS's peak RSS and CPU.
 */
import { cpuSeconds, rssMB, startBenchCss, type Variant } from './lib/css.js'
import { pct } from './lib/load.js'
import { printTable, writeResult } from './lib/report.js'
import { publish, sleep, startEdgeWorkers, stopEdgeWorkers, waitConsumed, waitOnline } from './fanout.js'

async function storm (variant: Variant, n: number): Promise<Record<string, number | string>> {
  const css = await startBenchCss(variant)
  try {
    const nodes = await css.enroll(n)
    const workers = await startEdgeWorkers('sync', css.mqttUrl, nodes)
    await waitOnline(css.base, n)
    await publish(css.base, 'c1')
    await waitConsumed(css.base, 'c1', n, 600_000)
    process.stderr.write(`storm: ${n} edges online and holding c1; dropping every connection\n`)
    await workers.send({ cmd: 'drop' }, 'dropped')
    await sleep(2000)
    await publish(css.base, 'c2', '{"threshold":40000}')
    const cpu0 = await cpuSeconds(css.pid)
    let peak = await rssMB(css.pid)
    const sampler = setInterval(() => { rssMB(css.pid).then((r) => { peak = Math.max(peak, r) }, () => {}) }, 500)
    const t0 = Date.now()
    await workers.send({ cmd: 'reconnect' }, 'reconnected')
    const connectedMs = Date.now() - t0
    const onlineMs = await waitOnline(css.base, n) + connectedMs
    const resynced = (await waitConsumed(css.base, 'c2', n, 600_000)).map((t) => t - t0).sort((a, b) => a - b)
    clearInterval(sampler)
    const cpu = (await cpuSeconds(css.pid)) - cpu0
    await stopEdgeWorkers(workers)
    return {
      variant,
      edges: n,
      allConnectedS: Number((connectedMs / 1000).toFixed(1)),
      allOnlineS: Number((onlineMs / 1000).toFixed(1)),
      resyncP50S: Number((pct(resynced, 0.5) / 1000).toFixed(1)),
      allResyncedS: Number(((resynced.at(-1) ?? 0) / 1000).toFixed(1)),
      cssPeakRssMB: peak,
      cssCpuS: Number(cpu.toFixed(1))
    }
  } finally {
    await css.stop()
  }
}

export async function runStormBench (sizes: number[], variants: Variant[]): Promise<void> {
  const rows: Array<Record<string, string | number>> = []
  for (const v of variants) for (const n of sizes) rows.push(await storm(v, n))
  printTable('storm: every edge disconnects, an update is published, all reconnect at once', rows)
  await writeResult('storm', { rows })
}
