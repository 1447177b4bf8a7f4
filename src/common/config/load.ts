/** sync.conf -> environment overlay -> one ajv validation -> frozen config (anchor-aesthetics 3.7). */
import { readFile } from 'node:fs/promises'
import { ConfigError, SyncErrorCode } from '../errors.js'
import { describeErrors } from '../validate.js'
import { CONFIG_KEYS, type SyncConfig } from './schema.js'
import { configValidators } from './validators.js'

/** Parses the Go original's `Key value` lines; `#` starts a comment. */
export function parseConfText (text: string, source = 'sync.conf'): Record<string, string> {
  const out: Record<string, string> = {}
  const bad: string[] = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const m = /^([A-Za-z][A-Za-z0-9]*)(?:\s+(.*))?$/.exec(line)
    if (m === null || m[1] === undefined) {
      bad.push(`${source}:${i + 1}: cannot parse "${line}"`)
      return
    }
    out[m[1]] = (m[2] ?? '').trim()
  })
  if (bad.length > 0) throw new ConfigError(SyncErrorCode.CONFIG_INVALID, bad.join('; '), { details: bad })
  return out
}

/** `NodeType` -> `NODE_TYPE`, `OrgID` -> `ORG_ID`, as the Go original derives its variables. */
export function envName (key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toUpperCase()
}

export interface LoadOptions {
  /** Path of sync.conf; a missing file is fine when `optional` (defaults + env only). */
  file?: string
  optional?: boolean
  env?: NodeJS.ProcessEnv
  /** Values that win over file and env (tests, embedding). */
  overrides?: Partial<Record<keyof SyncConfig, string | number | boolean>>
}

export async function loadConfig (opts: LoadOptions = {}): Promise<Readonly<SyncConfig>> {
  let fromFile: Record<string, string> = {}
  if (opts.file !== undefined) {
    try {
      fromFile = parseConfText(await readFile(opts.file, 'utf8'), opts.file)
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT'
      if (!(missing && opts.optional === true)) {
        if (err instanceof ConfigError) throw err
        throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `Cannot read config file ${opts.file}`, {
          cause: err
        })
      }
    }
  }
  return buildConfig(fromFile, opts.env ?? process.env, opts.overrides ?? {})
}

// Two passes: the first coerces env and file strings to their types and fills defaults; the
// conditional rules then see `RequireTls: true`, not the string "true" (in one pass ajv may
// evaluate `allOf` before `properties` has coerced the value, and the rule silently never fires).
const { base: validateBase, rules: validateRules } = await configValidators()
const validate = Object.assign(
  (data: unknown): boolean => {
    const ok = validateBase(data) && validateRules(data)
    validate.errors = validateBase.errors ?? validateRules.errors
    return ok
  },
  { errors: undefined as typeof validateBase.errors }
)

export function buildConfig (
  fromFile: Record<string, string>,
  env: NodeJS.ProcessEnv,
  overrides: Record<string, string | number | boolean>
): Readonly<SyncConfig> {
  const raw: Record<string, unknown> = { ...fromFile }
  for (const key of Object.keys(CONFIG_KEYS)) {
    const v = env[envName(key)]
    if (v !== undefined && v !== '') raw[key] = v
  }
  Object.assign(raw, overrides)
  if (!validate(raw)) {
    const problems = describeErrors(validate.errors)
    throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `Invalid configuration: ${problems.join('; ')}`, {
      details: problems
    })
  }
  const cfg = raw as unknown as SyncConfig
  if (cfg.ListeningPort === undefined) cfg.ListeningPort = cfg.NodeType === 'CSS' ? 8080 : 8081
  return Object.freeze(cfg)
}

/** The config with secret values replaced, for the startup log line. */
/** The settings that apply to this node type (a CSS's log lists no ESS keys), secrets redacted. */
export function redactedConfig (cfg: Readonly<SyncConfig>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(cfg)) {
    const key = CONFIG_KEYS[k as keyof SyncConfig]
    if (key !== undefined && key.for !== 'both' && key.for !== cfg.NodeType) continue
    out[k] = key?.secret === true && v !== undefined ? '[redacted]' : v
  }
  return out
}
