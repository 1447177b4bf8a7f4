import type { WebhookRecord } from '../../common/model.js'
import { joinKey } from '../common.js'
import type { WebhookStore } from '../types.js'

export type WebhookTableData = Record<string, WebhookRecord>

export class WebhookTable implements WebhookStore {
  readonly #data: () => WebhookTableData
  readonly #commit: () => Promise<void>
  constructor (data: () => WebhookTableData, commit: () => Promise<void>) {
    this.#data = data
    this.#commit = commit
  }

  async put (hook: WebhookRecord): Promise<void> {
    const id = joinKey(hook.orgId, hook.objectType, hook.url)
    if (this.#data()[id] !== undefined) return
    this.#data()[id] = { ...hook }
    await this.#commit()
  }

  async remove (orgId: string, objectType: string, url: string): Promise<boolean> {
    const data = this.#data()
    const id = joinKey(orgId, objectType, url)
    if (data[id] === undefined) return false
    Reflect.deleteProperty(data, id)
    await this.#commit()
    return true
  }

  async list (orgId: string, objectType: string): Promise<WebhookRecord[]> {
    return Object.values(this.#data())
      .filter((h) => h.orgId === orgId && h.objectType === objectType)
      .sort((a, b) => (a.url < b.url ? -1 : 1))
      .map((h) => ({ ...h }))
  }
}
