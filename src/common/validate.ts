/** The only ajv import: one shared instance for route, message and config schemas. */
import { Ajv, type ErrorObject, type ValidateFunction, type Options } from 'ajv'
import addFormatsModule from 'ajv-formats'

export type { ValidateFunction, ErrorObject }

/**
 * Checking each schema against JSON Schema's meta-schema compiles that meta-schema in every
 * instance (about 25 ms of CPU each at every start, four instances in an ESS). Our schemas are
 * fixed in the code, so they are checked where they change: under the test runner (tap sets TAP
 * in every process it starts, and in the processes those start).
 */
const checkSchemas = process.env.TAP !== undefined || process.env.EDGESYNC_CHECK_SCHEMAS === '1'

export function createAjv (opts: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, validateSchema: checkSchemas, ...opts })
  addFormatsModule.default(ajv)
  return ajv
}

/** One line per error: `/path: message`, so a caller sees every problem at once. */
export function describeErrors (errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const path = e.instancePath === '' ? '/' : e.instancePath
    if (e.keyword === 'additionalProperties') {
      return `${path}: unknown key "${String((e.params as { additionalProperty: string }).additionalProperty)}"`
    }
    if (e.keyword === 'enum') {
      const allowed = (e.params as { allowedValues?: unknown[] }).allowedValues ?? []
      return `${path}: must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`
    }
    return `${path}: ${e.message ?? e.keyword}`
  })
}
