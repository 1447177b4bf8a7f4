/**
 * The HTTP link's routes (edges on `CommunicationProtocol http`, or `auto` while the broker is out
 * of reach). Only a node may use them, and only as itself: its identity comes from its login,
 * never from the request, so there is nothing to name another node by.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { encodeFrames } from '../common/protocol/frames.js'
import { decodeUp } from '../common/protocol/messages.js'
import { forbidden, readBody } from '../api/server.js'
import type { HttpBridge } from '../transport/index.js'

const sessionQuery = {
  type: 'object',
  properties: {
    session: { type: 'string', pattern: '^[A-Za-z0-9-]{8,64}$' },
    ack: { type: 'integer', minimum: 0, maximum: 4294967295, default: 0 },
    wait: { type: 'integer', minimum: 0, maximum: 60, default: 25 }
  },
  required: ['session'],
  additionalProperties: false
} as const

interface SessionQuery {
  session: string
  ack: number
  wait: number
}

function nodeOf (req: FastifyRequest): string {
  const who = req.identity
  if (who?.role !== 'node') throw forbidden('Only an enrolled node uses the sync link')
  return who.appKey
}

export function registerLinkRoutes (app: FastifyInstance, bridge: HttpBridge, maxPayload: number): void {
  app.get<{ Querystring: SessionQuery }>(
    '/api/v1/link/down',
    { schema: { summary: 'Edge link: long poll for messages to this node', querystring: sessionQuery } },
    async (req, reply) => {
      const node = nodeOf(req)
      const gone = new AbortController()
      req.raw.once('close', () => {
        gone.abort()
      })
      const q = req.query
      const answer = await bridge.poll(node, q.session, q.ack, q.wait * 1000, gone.signal)
      return await reply
        .header('x-link-fresh', String(answer.fresh))
        .type('application/octet-stream')
        .send(encodeFrames(answer.frames))
    }
  )
  app.post<{ Querystring: SessionQuery }>(
    '/api/v1/link/up',
    { schema: { summary: 'Edge link: one message from this node', querystring: sessionQuery } },
    async (req, reply) => {
      const node = nodeOf(req)
      const stream = req.body as AsyncIterable<Uint8Array> | undefined
      const body = stream === undefined ? Buffer.alloc(0) : await readBody(stream, maxPayload)
      // A malformed message is refused with its reason here (over MQTT it can only be dropped).
      decodeUp(body)
      // Answered once handled, as a PUBACK is: an acknowledged message is durable.
      await bridge.up(node, body)
      return await reply.code(204).send()
    }
  )
  app.delete<{ Querystring: SessionQuery }>(
    '/api/v1/link/down',
    { schema: { summary: 'Edge link: end this node\'s session', querystring: sessionQuery } },
    async (req, reply) => {
      bridge.end(nodeOf(req), req.query.session)
      return await reply.code(204).send()
    }
  )
}
