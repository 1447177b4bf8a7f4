/**
 * The outsider's checks of the scale-out failover tests: each edge's app polls a streamed object
 * (as an Open Horizon app does) and notes the versions it saw; afterwards every edge must hold the
 * newest version of everything (data compared), every destination must be consumed at the CSS,
 * and no app may have seen the stream go backwards.
 */
import type { Test } from 'tap'
import { ADMIN, APP, basic, waitFor } from './cluster.js'

/** s1 is the stream (its description is its version); o0..o{others-1} the other objects. */
export interface Stream { versions: number, others: number }

/** Starts each edge's app polling `stream/s1`; `stop` ends the polling and returns what each saw. */
export function watchStream (ess: Map<string, string>): { stop: () => Promise<Map<string, number[]>> } {
  const seen = new Map<string, number[]>([...ess.keys()].map((id) => [id, []]))
  const polling = { on: true }
  const apps = [...ess].map(async ([id, url]) => {
    while (polling.on) {
      const r = await fetch(`${url}/api/v1/objects/stream/s1`, { headers: { authorization: basic(APP) } }).catch(() => undefined)
      if (r?.status === 200) {
        const v = Number(((await r.json()) as { description?: string }).description ?? 0)
        const list = seen.get(id) ?? []
        if (list.at(-1) !== v) list.push(v)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })
  return {
    stop: async () => {
      polling.on = false
      await Promise.all(apps)
      return seen
    }
  }
}

/** Every edge holds the newest of everything; its app then marks each consumed. */
export async function checkEdgesHoldAll (t: Test, ess: Map<string, string>, s: Stream): Promise<void> {
  for (const [id, e] of ess) {
    const s1 = await waitFor(`s1 v${s.versions} on ${id}`, async () => {
      const r = await fetch(`${e}/api/v1/objects/stream/s1/data`, { headers: { authorization: basic(APP) } })
      const text = r.status === 200 ? await r.text() : ''
      return text === `version ${s.versions}` ? text : undefined
    }, 60_000)
    t.equal(s1, `version ${s.versions}`)
    for (let i = 0; i < s.others; i++) {
      const text = await waitFor(`o${i} on ${id}`, async () => {
        const r = await fetch(`${e}/api/v1/objects/conf/o${i}/data`, { headers: { authorization: basic(APP) } })
        return r.status === 200 ? await r.text() : undefined
      }, 60_000)
      if (text !== `object ${i}`) t.fail(`o${i} on ${id}: ${text}`)
    }
    for (const [type, oid] of objects(s)) {
      const r = await fetch(`${e}/api/v1/objects/${type}/${oid}/consumed`, { method: 'PUT', headers: { authorization: basic(APP) } })
      if (r.status !== 204) t.fail(`consume ${oid} on ${id}: ${r.status}`)
    }
  }
}

/** No app saw the stream go backwards, and each ended on the newest version. */
export function checkForwardOnly (t: Test, seen: Map<string, number[]>, s: Stream): void {
  for (const [id, versions] of seen) {
    t.ok(versions.every((v, i) => i === 0 || v > (versions[i - 1] ?? 0)), `${id}'s app saw ${versions.join(',')}`)
    t.equal(versions.at(-1), s.versions)
  }
}

/** The CSS at `css` shows every one of `ids` consumed for every object (other edges ignored). */
export async function checkAllConsumed (t: Test, css: string, ids: string[], s: Stream): Promise<void> {
  for (const [type, oid] of objects(s)) {
    const list = await waitFor(`${oid} consumed everywhere`, async () => {
      const r = await fetch(`${css}/api/v1/objects/org1/${type}/${oid}/destinations`, { headers: { authorization: basic(ADMIN) } })
      const l = (await r.json() as Array<{ status: string, destinationID: string }>).filter((d) => ids.includes(d.destinationID))
      return l.length === ids.length && l.every((d) => d.status === 'consumed') ? l : undefined
    }, 60_000)
    t.equal(list.length, ids.length, `${oid}: every destination consumed`)
  }
}

function objects (s: Stream): Array<[string, string]> {
  return [['stream', 's1'], ...Array.from({ length: s.others }, (_, i): [string, string] => ['conf', `o${i}`])]
}
