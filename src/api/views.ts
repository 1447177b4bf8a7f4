/** JSON shapes shared by the CSS and ESS APIs (Open Horizon field names plus ours). */
import type { DeliveryRecord } from '../common/model.js'

export function destinationView (d: DeliveryRecord): Record<string, unknown> {
  return {
    destinationOrgID: d.orgId,
    destinationType: d.destinationType,
    destinationID: d.destinationId,
    status: d.status,
    message: d.message ?? '',
    instanceID: d.instanceId,
    detail: d.detail ?? '',
    ...(d.bytes === undefined ? {} : { bytesReceived: d.bytes }),
    times: d.times,
    lastUpdate: d.updatedAt
  }
}
