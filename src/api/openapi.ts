/**
 * The statuses each operation can answer, added to the OpenAPI document only (response schemas in
 * the routes themselves would make Fastify filter the bodies). Every error is problem+json.
 */
import { problemSchema } from './schemas.js'

import type { FastifySchema } from 'fastify'

type Schema = FastifySchema & { response?: Record<string, unknown>; hide?: boolean }

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request: the problem names the path of each wrong field',
  401: 'Missing or wrong credentials',
  403: 'The identity may not do this',
  404: 'No such object, node, user or route',
  409: 'Conflicts with the current state',
  412: 'If-Match did not match the current version',
  413: 'Body larger than the configured limit',
  415: 'Content type not supported here',
  416: 'Range outside the data',
  429: 'Too many requests or failed logins; see Retry-After',
  503: 'The store or broker failed, or the service is starting or stopping'
}

const SUCCESS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted: more to come',
  204: 'Done, no body',
  206: 'Part of the data',
  304: 'Not modified'
}

function statusesFor (method: string, url: string): { ok: number[]; errors: number[] } {
  const common = [400, 401, 403, 404, 429, 503]
  switch (method) {
    case 'GET':
    case 'HEAD':
      return url.endsWith('/data')
        ? { ok: [200, 206, 304], errors: [...common, 416] }
        : { ok: [200, 304], errors: common }
    case 'PUT':
      return { ok: [200, 201, 202, 204], errors: [...common, 409, 412, 413, 415, 416] }
    case 'POST':
      return { ok: [200, 201, 204], errors: [...common, 409, 412, 413, 415] }
    case 'PATCH':
      return { ok: [200, 204], errors: [...common, 409, 413, 415] }
    default:
      return { ok: [200, 204], errors: [...common, 409, 412] }
  }
}

/** What a success answer carries: nothing (204, 304), bytes, text, events or JSON. */
function successEntry (status: number, url: string): Record<string, unknown> {
  const description = SUCCESS_TEXT[status] ?? 'OK'
  // `type: 'null'` is @fastify/swagger's spelling of "no body".
  if (status === 204 || status === 304) return { type: 'null', description }
  if (url.endsWith('/data') && status !== 202) {
    return {
      description,
      content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } }
    }
  }
  if (url.startsWith('/api/v1/objects/') && url.endsWith('/status')) {
    return { description, content: { 'text/plain': { schema: { type: 'string' } } } }
  }
  if (url.endsWith('/events')) {
    return { description, content: { 'text/event-stream': { schema: { type: 'string' } } } }
  }
  return { description, content: { 'application/json': { schema: {} } } }
}

/** @fastify/swagger `transform`: documents every status of every operation. */
export function documentResponses ({
  schema,
  url,
  route
}: {
  schema: FastifySchema | undefined
  url: string
  route: { method: string | string[] }
}): { schema: Schema; url: string } {
  const given = schema as Schema | undefined
  const method = Array.isArray(route.method) ? (route.method[0] ?? 'GET') : route.method
  const { ok, errors } = statusesFor(method, url)
  const response: Record<string, unknown> = {}
  for (const s of ok) response[s] = successEntry(s, url)
  for (const s of errors) {
    response[s] = {
      description: ERROR_TEXT[s] ?? 'Error',
      content: { 'application/problem+json': { schema: problemSchema } }
    }
  }
  return { schema: { ...(given ?? {}), response: { ...response, ...(given?.response ?? {}) } }, url }
}
