/**
 * Barriers for tests that check something did NOT happen. Instead of waiting a fixed time, send a
 * later message down the same path and wait for it: whatever was sent before it has arrived by then
 * (the CSS publishes to an edge in order; an edge's messages reach the CSS in order), so a check
 * made after the barrier is final, on a fast machine as on a loaded one.
 */
import { randomBytes } from 'node:crypto'
import { basic, waitFor } from './cluster.js'

interface Edge { restUrl: string }

/**
 * CSS to edge: publishes a small object of type `barrier` to one edge and waits until the edge
 * holds it. Everything the CSS published to that edge before has been delivered by then. With
 * `acked`, also waits until the CSS has the edge's ack: everything the edge sent before it (its
 * register after a reconnect, say) has been processed too.
 */
export async function edgeBarrier (
  cssUrl: string, admin: { key: string, secret: string }, edge: Edge,
  node: { org: string, type: string, id: string }, app: { key: string, secret: string }, acked = false
): Promise<void> {
  const id = `b-${randomBytes(4).toString('hex')}`
  const r = await fetch(`${cssUrl}/api/v1/objects/${node.org}/barrier/${id}`, {
    method: 'PUT',
    headers: { authorization: basic(admin), 'content-type': 'application/json' },
    body: JSON.stringify({ meta: { destinationType: node.type, destinationID: node.id, noData: true } })
  })
  if (r.status !== 204) throw new Error(`barrier not published: ${r.status} ${await r.text()}`)
  await waitFor(`barrier ${id} on ${node.id}`, async () => {
    const got = await fetch(`${edge.restUrl}/api/v1/objects/barrier/${id}`, { headers: { authorization: basic(app) } })
    return got.status === 200 ? true : undefined
  }, 20_000)
  if (!acked) return
  await waitFor(`barrier ${id} acknowledged by ${node.id}`, async () => {
    const d = await fetch(`${cssUrl}/api/v1/objects/${node.org}/barrier/${id}/destinations`, { headers: { authorization: basic(admin) } })
    const list = d.ok ? await d.json() as Array<{ status: string }> : []
    return list[0]?.status === 'delivered' ? true : undefined
  }, 20_000)
}
