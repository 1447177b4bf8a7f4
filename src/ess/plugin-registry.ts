/** The plugins an ESS can host, by the name sync.conf's `Plugins` uses; the composition supplies them. */
import { ConfigError, SyncErrorCode } from '../common/errors.js'
import type { EdgePlugin } from './plugins.js'

/** Plugin factories by name (e.g. `ems`), handed to the ESS by the composition in src/app. */
export type PluginFactories = Readonly<Record<string, () => EdgePlugin>>

export function createPlugins (list: string, known: PluginFactories): EdgePlugin[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((name) => {
      const make = known[name]
      if (make === undefined) {
        throw new ConfigError(
          SyncErrorCode.CONFIG_INVALID,
          `Plugins: unknown plugin ${name} (known: ${Object.keys(known).join(', ') || 'none'})`
        )
      }
      return make()
    })
}
