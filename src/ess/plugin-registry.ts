/** The plugins an ESS can host, by the name sync.conf's `Plugins` uses. */
import { ConfigError, SyncErrorCode } from '../common/errors.js'
import { EmsPlugin } from '../ems/plugin.js'
import type { EdgePlugin } from './plugins.js'

const KNOWN: Readonly<Record<string, () => EdgePlugin>> = {
  ems: () => new EmsPlugin()
}

export function createPlugins (list: string): EdgePlugin[] {
  return list.split(',').map((s) => s.trim()).filter(Boolean).map((name) => {
    const make = KNOWN[name]
    if (make === undefined) throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `Plugins: unknown plugin ${name} (known: ${Object.keys(KNOWN).join(', ')})`)
    return make()
  })
}
