/**
 * Signed statements that are not object metadata. Signing the bare ids of a delete would let a
 * signature of one org's delete be replayed in another org, so the statement names the org.
 */
export function deleteStatement (
  orgId: string,
  ids: { objectType: string; objectId: string; instanceId: number }
): Record<string, string | number> {
  return {
    statement: 'delete',
    orgId,
    objectType: ids.objectType,
    objectId: ids.objectId,
    instanceId: ids.instanceId
  }
}
