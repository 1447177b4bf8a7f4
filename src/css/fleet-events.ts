/**
 * Tells dashboards that something of an org's fleet changed: status writes (heartbeats, presence,
 * delivery states) report their orgs here, and subscribers hear of each org at most once per
 * `everyMs`. In this process only: a dashboard on another CSS instance hears of that instance's
 * writes, and refreshes on its own timer too.
 */
export class FleetEvents {
  readonly #subs = new Map<string, Set<(at: string) => void>>()
  readonly #due = new Set<string>()
  readonly #everyMs: number
  #timer: NodeJS.Timeout | undefined

  constructor (everyMs = 1000) {
    this.#everyMs = everyMs
  }

  changed (orgIds: Iterable<string>): void {
    for (const o of orgIds) if (this.#subs.has(o)) this.#due.add(o)
    if (this.#due.size === 0 || this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      const at = new Date().toISOString()
      const due = [...this.#due]
      this.#due.clear()
      for (const o of due) for (const f of this.#subs.get(o) ?? []) f(at)
    }, this.#everyMs)
    this.#timer.unref()
  }

  subscribe (orgId: string, f: (at: string) => void): () => void {
    let s = this.#subs.get(orgId)
    if (s === undefined) this.#subs.set(orgId, (s = new Set()))
    s.add(f)
    return () => {
      s.delete(f)
      if (s.size === 0) this.#subs.delete(orgId)
    }
  }

  close (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#subs.clear()
  }
}
