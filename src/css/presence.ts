/** Whether a node counts as online: connected, and heard from within `offlineAfterMs`. */
import type { NodeRecord } from '../common/model.js'

export function isOnline (n: NodeRecord, offlineAfterMs: number, now = Date.now()): boolean {
  const heard = n.lastHeartbeat === undefined ? 0 : Date.parse(n.lastHeartbeat)
  return n.online && now - heard <= offlineAfterMs
}
