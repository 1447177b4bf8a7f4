/**
 * `register`: a node (re)connected and reports what it holds; the CSS rebuilds its delivery
 * records from that report and resends whatever the node misses.
 * Rule: holdings count only for objects addressed to the sender (an edge cannot create delivery
 * records, or mark consumed, objects it was never sent); the rest are dropped and counted.
 */
import type { DeliveryUpdate, DestinationKey, StoredObject } from '../../common/model.js'
import { encode, type Holding } from '../../common/protocol/messages.js'
import { downTopic } from '../../common/protocol/topics.js'
import { isAddressedTo } from '../addressing.js'
import type { Handler, HandlerContext } from './context.js'

const HOLDING_TO_STATUS = {
  received: 'delivered',
  consumed: 'consumed',
  deleted: 'deleted',
  error: 'error'
} as const

function holdingUpdate (node: DestinationKey, h: Holding): DeliveryUpdate {
  const rejected =
    h.state === 'error' ? { detail: 'rejected', message: h.message ?? 'refused by a plugin' } : {}
  return {
    ...node,
    objectType: h.objectType,
    objectId: h.objectId,
    instanceId: h.instanceId,
    status: HOLDING_TO_STATUS[h.state],
    ...rejected
  }
}

/** Every object of the node's org addressed to it, page by page. */
async function * addressed (
  ctx: HandlerContext,
  node: DestinationKey,
  properties: Record<string, string>
): AsyncGenerator<StoredObject> {
  const rec = { ...node, properties }
  let cursor: string | undefined
  do {
    const page = await ctx.store.objects.list({
      orgId: node.orgId,
      limit: 500,
      ...(cursor === undefined ? {} : { cursor })
    })
    for (const obj of page.items) if (isAddressedTo(obj.meta, node.orgId, rec)) yield obj
    cursor = page.next
  } while (cursor !== undefined)
}

export const onRegister: Handler<'register'> = async (ctx, node, msg, log) => {
  ctx.observe.registered()
  const prev = await ctx.store.nodes.get(node)
  const now = new Date().toISOString()
  const { properties, codeVersion } = msg
  await ctx.store.nodes.upsert({
    ...node,
    properties,
    codeVersion,
    protocol: msg.protocol ?? 'mqtt',
    online: true,
    registeredAt: prev?.registeredAt ?? now,
    lastHeartbeat: now
  })
  const held = new Map(msg.holdings.map((h) => [`${h.objectType}/${h.objectId}`, h]))
  // Collect first, then one status batch and the publishes: awaiting a group commit per resent
  // object would make a node with many missing objects wait a commit window for each.
  const updates: DeliveryUpdate[] = []
  const sends: Buffer[] = []
  let accepted = 0
  for await (const obj of addressed(ctx, node, properties)) {
    const id = `${obj.key.objectType}/${obj.key.objectId}`
    const h = held.get(id)
    held.delete(id)
    // What the edge reports it holds is the truth: it rebuilds any status a crash lost.
    if (h !== undefined && h.instanceId <= obj.meta.instanceID) {
      const drift = h.hash !== undefined && h.instanceId === obj.meta.instanceID &&
        obj.meta.dataHash !== undefined && h.hash !== obj.meta.dataHash
      // Drift: the edge holds other bytes than this instance (changed on the device). Shown as
      // an error on its delivery; restoring the instance (a new one, same content) corrects it.
      updates.push(drift
        ? { ...holdingUpdate(node, h), status: 'error', detail: 'drift', message: `holds other content than instance ${h.instanceId} (sha256 ${(h.hash ?? '').slice(0, 12)}...)` }
        : holdingUpdate(node, h))
      if (drift) log.warn('Drift: an edge holds other content than it was sent', { object: id, instanceId: h.instanceId })
      accepted++
    }
    if (obj.meta.deleted === true) {
      if (h !== undefined && h.state !== 'deleted') sends.push(await ctx.deletePayload(obj))
      continue
    }
    if (obj.status !== 'ready' || obj.meta.inactive === true) continue
    if (h !== undefined && h.instanceId >= obj.meta.instanceID) continue
    const { payload, error } = await ctx.updatePayload(obj)
    const base = { ...obj.key, ...node, instanceId: obj.meta.instanceID }
    if (payload === undefined) {
      updates.push({
        ...base,
        status: 'error',
        detail: 'rejected: data missing',
        ...(error === undefined ? {} : { message: error })
      })
      continue
    }
    updates.push({ ...base, status: 'delivering', detail: 'resent on register' })
    sends.push(payload)
  }
  // Holdings left over name objects the node was never sent (or that no longer exist).
  // (A `deleted` holding of an object the CSS already removed is normal, not a refusal.)
  const stray = [...held.values()].filter((h) => h.state !== 'deleted')
  if (stray.length > 0) {
    ctx.refuse('not-addressed', log, {
      holdings: stray.length,
      first: `${stray[0]?.objectType}/${stray[0]?.objectId}`
    })
  }
  await ctx.status.deliveries(updates)
  const down = downTopic(node)
  // After a key rotation, a node that missed the announcement learns the new key first.
  const trust = await ctx.signer.currentTrust(node.orgId)
  if (trust.trustSig !== undefined) {
    await ctx.transport.publish(
      down,
      encode({ v: 1, kind: 'trust', publicKey: trust.publicKey, sig: trust.trustSig })
    )
  }
  for (const p of sends) await ctx.transport.publish(down, p)
  await ctx.transport.publish(down, encode({ v: 1, kind: 'registered', resent: sends.length }))
  log.info('Node registered', { holdings: msg.holdings.length, accepted, resent: sends.length })
  await ctx.hooks.registered(node)
}
