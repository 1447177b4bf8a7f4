/**
 * The configuration's two validators (see load.ts for why two passes): the code generated at build
 * time from this very schema when there is one (scripts/build-validators.mjs), else compiled here.
 * Generated code spares every start compiling the schema (30-70 ms, #22); tests run the sources,
 * so they compile, and a build whose schema changed since is caught by the hash.
 */
import { createHash } from 'node:crypto'
import { createAjv, type ValidateFunction } from '../validate.js'
import { configJsonSchema } from './schema.js'

export { createAjv }

export const configAjvOptions = { coerceTypes: true, useDefaults: true, strictRequired: false } as const

interface Generated {
  schemaHash: string
  validateBase: ValidateFunction
  validateRules: ValidateFunction
}

export async function configValidators (): Promise<{ base: ValidateFunction; rules: ValidateFunction }> {
  const schema = configJsonSchema()
  // A computed name: the file exists only in dist/, after a build.
  const file = './validators.generated.js'
  const generated = (await import(file).catch(() => undefined)) as Generated | undefined
  if (generated?.schemaHash === createHash('sha256').update(JSON.stringify(schema)).digest('hex')) {
    return { base: generated.validateBase, rules: generated.validateRules }
  }
  const { allOf, ...base } = schema
  const ajv = createAjv(configAjvOptions)
  return { base: ajv.compile(base), rules: ajv.compile({ type: 'object', allOf }) }
}
