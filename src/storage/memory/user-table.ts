import type { AclEntry, AclKind, UserRecord } from '../../common/model.js'
import { joinKey } from '../common.js'
import type { UserStore } from '../types.js'

export interface UserTableData {
  users: Record<string, UserRecord>
  acls: Record<string, AclEntry>
}

export function aclId (e: Pick<AclEntry, 'orgId' | 'kind' | 'key' | 'userType' | 'username'>): string {
  return joinKey(e.orgId, e.kind, e.key, e.userType, e.username)
}

export class UserTable implements UserStore {
  readonly #data: () => UserTableData
  readonly #commit: () => Promise<void>
  constructor (data: () => UserTableData, commit: () => Promise<void>) {
    this.#data = data
    this.#commit = commit
  }

  async put (user: UserRecord): Promise<void> {
    this.#data().users[user.appKey] = structuredClone(user)
    await this.#commit()
  }

  async get (appKey: string): Promise<UserRecord | undefined> {
    const u = this.#data().users[appKey]
    return u === undefined ? undefined : structuredClone(u)
  }

  async list (orgId?: string): Promise<UserRecord[]> {
    return Object.values(this.#data().users)
      .filter((u) => orgId === undefined || u.orgId === orgId)
      .sort((a, b) => (a.appKey < b.appKey ? -1 : 1))
      .map((u) => structuredClone(u))
  }

  async remove (appKey: string): Promise<boolean> {
    const users = this.#data().users
    if (users[appKey] === undefined) return false

    delete users[appKey]
    await this.#commit()
    return true
  }

  async putAcl (entries: readonly AclEntry[]): Promise<void> {
    const acls = this.#data().acls
    for (const e of entries) acls[aclId(e)] = { ...e }
    if (entries.length > 0) await this.#commit()
  }

  async removeAcl (
    orgId: string,
    kind: AclKind,
    key: string,
    userType: AclEntry['userType'],
    username: string
  ): Promise<boolean> {
    const acls = this.#data().acls
    const id = aclId({ orgId, kind, key, userType, username })
    if (acls[id] === undefined) return false

    delete acls[id]
    await this.#commit()
    return true
  }

  async listAcl (orgId: string, kind: AclKind, key?: string): Promise<AclEntry[]> {
    return Object.values(this.#data().acls)
      .filter((e) => e.orgId === orgId && e.kind === kind && (key === undefined || e.key === key))
      .sort((a, b) => (aclId(a) < aclId(b) ? -1 : 1))
      .map((e) => ({ ...e }))
  }
}
