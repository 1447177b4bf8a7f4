/**
 * The EMS plugin's Prometheus series on the ESS: config outcomes, apply and rollback times, the core
 * cycle, devices, alarms.
 */
import { counter, gauge, histogram, mirroredCounter, type Registry } from '../../common/metrics.js'
import type { PluginVerdict } from '../../ess/plugins.js'
import type { RuntimeStats } from './runtime.js'

/** What a verdict's message says happened (the plugin's own wording, see plugin.ts). */
function outcomeOf (v: PluginVerdict): string {
  if (v.state === 'consumed') return 'committed'
  if (v.message.startsWith('rolled back')) return 'rolled_back'
  if (v.message.startsWith('rejected')) return 'refused'
  return 'failed'
}

export class EmsMetrics {
  readonly #outcomes
  readonly #apply
  readonly #rollback

  constructor (r: Registry, stats: () => RuntimeStats) {
    this.#outcomes = counter(r, 'edgesync_ems_configs_total', 'EMS configs handled, by outcome', ['outcome'])
    this.#apply = histogram(r, 'edgesync_ems_apply_seconds', 'From receiving an EMS config to committing or rolling it back')
    this.#rollback = histogram(r, 'edgesync_ems_rollback_seconds', 'Time to return to the last known-good config')
    mirroredCounter(r, 'edgesync_ems_core_cycles_total', 'Core cycles completed', () => stats().cycles)
    mirroredCounter(r, 'edgesync_ems_core_cycle_overruns_total', 'Core cycles that overran their period', () => stats().overruns)
    mirroredCounter(r, 'edgesync_ems_device_poll_errors_total', 'Failed Modbus polls, by device', () => stats().deviceErrorsBy, 'device')
    mirroredCounter(r, 'edgesync_ems_controller_errors_total', 'Controller errors', () => stats().controllerErrors)
    gauge(r, 'edgesync_ems_core_cycle_seconds', 'Duration of the last core cycle', [], (g) => {
      g.set(stats().lastCycleMs / 1000)
    })
    gauge(r, 'edgesync_ems_alarms_active', 'Alarms active now', [], (g) => {
      g.set(stats().activeAlarms.length)
    })
  }

  outcome (v: PluginVerdict, seconds: number, rollbackMs: number | undefined): void {
    const outcome = outcomeOf(v)
    this.#outcomes.inc({ outcome })
    if (outcome === 'committed' || outcome === 'rolled_back') this.#apply.observe(seconds)
    if (outcome === 'rolled_back' && rollbackMs !== undefined) this.#rollback.observe(rollbackMs / 1000)
  }
}
