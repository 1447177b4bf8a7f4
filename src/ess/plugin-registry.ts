/** The plugins an ESS can host, by the name sync.conf's `Plugins` uses; the composition supplies them. */
import { ConfigError, SyncErrorCode } from '../common/errors.js'
import type { EdgePlugin } from './plugins.js'

/**
 * Plugin factories by name (e.g. `ems`), handed to the ESS by the composition in src/app. A
 * factory may load its plugin's code when called: an edge without the plugin never loads it.
 */
export type PluginFactories = Readonly<Record<string, () => EdgePlugin | Promise<EdgePlugin>>>

export async function createPlugins (list: string, known: PluginFactories): Promise<EdgePlugin[]> {
  const made = list
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
  return await Promise.all(made)
}
