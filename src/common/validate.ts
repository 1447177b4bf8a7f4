/** The only ajv import: one shared instance for route, message and config schemas. */
import { Ajv, type ErrorObject, type ValidateFunction, type Options } from 'ajv'
import addFormatsModule from 'ajv-formats'

export type { ValidateFunction, ErrorObject }

export function createAjv (opts: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: true, ...opts })
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
