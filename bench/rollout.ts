/**
 * Rollout overhead: one CSS (child process, aedes+local) and N lightweight edges (worker processes
 * that consume what they receive). An EMS org-layer change goes to all N as a plain fan-out
 * (`PUT layers/org`: every edge at once), then as a 5-wave rollout (20% each, success threshold 1),
 * then as a plain fan-out again. Reported per wave: its own fan-out time (first send to last
 * consumed, the CSS's timestamps) and the wait before it (the engine's tick: the wave starts at
 * the first tick after the previous one held); and the CSS's CPU for the whole change. The goal:
 * the waves' fan-out time and the CPU within 10% of the plain fan-out. ROLLOUT_EDGES (1000).
 */
import { ADMIN_JSON as ADMIN, cpuSeconds, startBenchCss } from './lib/css.js'
import { printTable, writeResult } from './lib/report.js'
import { sleep, startEdgeWorkers, stopEdgeWorkers, waitOnline } from './fanout.js'

function orgLayer (threshold: number): Record<string, unknown> {
  return {
    core_cycle: { period_ms: 1000 },
    scheduler: { controllers: [{ id: 'ctrlPeakShaving0', class: 'PeakShavingController', enabled: true, execution_order: 1, parameters: { threshold_watts: threshold }, battery: 'bms_main', meter: 'grid' }] },
    modbus_devices: [
      { device_id: 'grid', profile: 'grid_meter', connection: { protocol: 'tcp', host: '127.0.0.1', port: 1, unit_id: 1 } },
      { device_id: 'bms_main', profile: 'battery', connection: { protocol: 'tcp', host: '127.0.0.1', port: 2, unit_id: 1 } }
    ],
    alarms: []
  }
}

interface Status { edge: string, latest: number, status: string }

export async function runRolloutBench (n: number): Promise<void> {
  const css = await startBenchCss('aedes+local')
  const base = css.base
  try {
    const nodes = await css.enroll(n)
    const workers = await startEdgeWorkers('sync', css.mqttUrl, nodes)
    await waitOnline(base, n)
    const status = async (): Promise<Status[]> => await (await fetch(`${base}/api/v1/ems/bench/status`, { headers: ADMIN })).json() as Status[]
    const settled = async (version: number): Promise<void> => {
      for (;;) {
        const s = await status()
        if (s.length === n && s.every((x) => x.latest === version && x.status === 'consumed')) return
        await sleep(1000) // the same polling for both ways: it costs the CSS the same
      }
    }
    const layer = async (threshold: number): Promise<void> => {
      const r = await fetch(`${base}/api/v1/ems/bench/layers/org`, { method: 'PUT', headers: ADMIN, body: JSON.stringify(orgLayer(threshold)) })
      if (r.status !== 200) throw new Error(`org layer: ${r.status} ${await r.text()}`)
    }
    await layer(50_000)
    await settled(1)
    process.stderr.write(`rollout bench: ${n} edges running v1\n`)
    const consumedTimes = async (): Promise<number[]> => {
      const out: number[] = []
      for (const e of nodes) {
        const d = await (await fetch(`${base}/api/v1/objects/bench/ems-config/${e.id}/destinations`, { headers: ADMIN })).json() as Array<{ times: { consumed?: string } }>
        out.push(Date.parse(d[0]?.times.consumed ?? ''))
      }
      return out
    }
    const plain = async (threshold: number, version: number): Promise<{ ms: number, cpuS: number }> => {
      await sleep(2000)
      const cpu0 = await cpuSeconds(css.pid)
      const t0 = Date.now()
      await layer(threshold)
      await settled(version)
      const cpuS = (await cpuSeconds(css.pid)) - cpu0
      return { ms: Math.max(...await consumedTimes()) - t0, cpuS }
    }
    const before = await plain(45_000, 2)
    await sleep(2000)
    const cpu0 = await cpuSeconds(css.pid)
    const t0 = Date.now()
    const create = await fetch(`${base}/api/v1/rollouts/bench`, {
      method: 'POST',
      headers: ADMIN,
      body: JSON.stringify({ id: 'bench', kind: 'ems', change: { layer: 'org', doc: orgLayer(40_000) }, waves: Array.from({ length: 5 }, () => ({ percent: 20 })) })
    })
    if (create.status !== 201) throw new Error(`rollout: ${create.status} ${await create.text()}`)
    let report: { status: string, edges: Array<{ wave: number, sentAt?: string, doneAt?: string }> }
    for (;;) {
      report = await (await fetch(`${base}/api/v1/rollouts/bench/bench`, { headers: ADMIN })).json() as typeof report
      if (report.status === 'completed') break
      if (report.status === 'paused' || report.status === 'aborted') throw new Error(`rollout ${report.status}`)
      await sleep(1000)
    }
    const rolloutCpu = (await cpuSeconds(css.pid)) - cpu0
    const after = await plain(35_000, 4)
    const waves = [1, 2, 3, 4, 5].map((w) => {
      const edges = report.edges.filter((e) => e.wave === w)
      return {
        start: Math.min(...edges.map((e) => Date.parse(e.sentAt ?? ''))),
        end: Math.max(...edges.map((e) => Date.parse(e.doneAt ?? ''))),
        size: edges.length
      }
    })
    const rows = waves.map((w, i) => ({
      wave: i + 1,
      edges: w.size,
      'wait before (ms)': i === 0 ? w.start - t0 : w.start - (waves[i - 1]?.end ?? w.start),
      'fan-out (ms)': w.end - w.start
    }))
    const fanout = waves.reduce((a, w) => a + w.end - w.start, 0)
    const waits = rows.reduce((a, r) => a + r['wait before (ms)'], 0)
    const plainMs = (before.ms + after.ms) / 2
    const plainCpu = (before.cpuS + after.cpuS) / 2
    printTable(`Rollout of an EMS change to ${n} edges in 5 waves (aedes+local)`, rows)
    const summary = {
      edges: n,
      plainFanoutMs: Math.round(plainMs),
      plainRuns: `${before.ms} / ${after.ms}`,
      wavesFanoutMs: fanout,
      waitsMs: waits,
      totalMs: (waves.at(-1)?.end ?? t0) - t0,
      fanoutOverheadPct: Number((((fanout - plainMs) / plainMs) * 100).toFixed(1)),
      plainCpuS: Number(plainCpu.toFixed(2)),
      plainCpuRuns: `${before.cpuS.toFixed(2)} / ${after.cpuS.toFixed(2)}`,
      rolloutCpuS: Number(rolloutCpu.toFixed(2)),
      cpuOverheadPct: Number((((rolloutCpu - plainCpu) / plainCpu) * 100).toFixed(1))
    }
    printTable('Against the plain fan-out of the same change (mean of one before and one after)', [summary])
    await writeResult('rollout', { summary, waves: rows })
    await stopEdgeWorkers(workers)
  } finally {
    await css.stop()
  }
}
