/**
 * Authorization on the CSS (Open Horizon's model): a sync admin may act in every org, an org admin
 * in its org; an org user needs an object-type ACL (reader or writer) and, to publish, access to
 * every destination type it addresses (a broadcast needs the all-types destination ACL). `*` stands
 * for every user of the org, key '' for every type. Edge node credentials never use the app API.
 */
import { SyncError, SyncErrorCode } from '../common/errors.js'
import type { AclEntry, ObjectMetadata } from '../common/model.js'
import type { Identity } from './authenticator.js'
import type { UserStore } from '../storage/index.js'

function forbidden (message: string): SyncError {
  return new SyncError(SyncErrorCode.FORBIDDEN, message)
}

export function requireOrg (who: Identity | undefined, orgId: string, admin = false): Identity {
  if (who === undefined) throw new SyncError(SyncErrorCode.UNAUTHENTICATED, 'Not authenticated')
  if (who.role === 'syncAdmin') return who
  if (who.role === 'node') throw forbidden('Edge node credentials cannot use the application API')
  if (who.orgId !== orgId) throw forbidden(`No access to org ${orgId}`)
  if (admin && who.role !== 'orgAdmin') throw forbidden('Needs an org admin')
  return who
}

async function entries (
  users: UserStore,
  orgId: string,
  kind: AclEntry['kind'],
  key: string
): Promise<AclEntry[]> {
  return [
    ...(await users.listAcl(orgId, kind, key)),
    ...(key === '' ? [] : await users.listAcl(orgId, kind, ''))
  ]
}

function mentions (list: AclEntry[], who: Identity): AclEntry[] {
  return list.filter((e) => e.userType === 'user' && (e.username === who.appKey || e.username === '*'))
}

/** Throws FORBIDDEN unless `who` may read (or write) objects of `objectType` in `orgId`. */
export async function requireObjectAccess (
  users: UserStore,
  who: Identity | undefined,
  orgId: string,
  objectType: string,
  write: boolean,
  meta?: Partial<ObjectMetadata>
): Promise<Identity> {
  const id = requireOrg(who, orgId)
  if (id.role !== 'user') return id
  const mine = mentions(await entries(users, orgId, 'objects', objectType), id)
  if (mine.length === 0) throw forbidden(`No ACL gives ${id.appKey} access to object type ${objectType}`)
  if (!write) return id
  if (!mine.some((e) => e.role === 'aclWriter')) {
    throw forbidden(`${id.appKey} may read but not write object type ${objectType}`)
  }
  if (meta === undefined) return id
  const types =
    (meta.destinationsList ?? []).length > 0
      ? [...new Set((meta.destinationsList ?? []).map((d) => d.split(':')[0] ?? ''))]
      : meta.destinationType !== undefined && meta.destinationType !== ''
        ? [meta.destinationType]
        : ['']
  for (const t of types) {
    const ok = mentions(
      t === ''
        ? await users.listAcl(orgId, 'destinations', '')
        : await entries(users, orgId, 'destinations', t),
      id
    )
    if (ok.length === 0) {
      throw forbidden(
        t === ''
          ? `${id.appKey} may not broadcast to every destination type`
          : `${id.appKey} may not address destination type ${t}`
      )
    }
  }
  return id
}
