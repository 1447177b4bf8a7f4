/**
 * An EdgeSync without a broker: the memory store, a fake link that records every publish (decoded),
 * a plugin gate and notices that record what they are told. For unit tests of the ESS core.
 */
import path from 'node:path'
import type { Test } from 'tap'
import type { ObjectMetadata } from '../../src/common/model.js'
import { decodeUp, encode, type DownMessage, type UpMessage } from '../../src/common/protocol/messages.js'
import { EdgeSync, type PluginGate } from '../../src/ess/sync.js'
import type { TrustStore } from '../../src/ess/trust.js'
import { Uplink } from '../../src/ess/uplink.js'
import { createMemoryStore, type Store } from '../../src/storage/index.js'
import { captureLogger } from './capture-log.js'

export interface FakeEdge {
  sync: EdgeSync
  store: Store
  /** Every message the edge published, in order. */
  sent: UpMessage[]
  /** Notices to local apps ("update conf/a#2"), and objects handed to plugins ("conf/a#2"). */
  notices: string[]
  offered: string[]
  /** Plugin refusals the gate reports (key "type/id#instance"). */
  refusals: Map<string, string>
  gate: string[]
  link: { connected: boolean }
  /** Delivers a CSS message as the broker would. */
  say: (msg: Record<string, unknown> & { kind: DownMessage['kind'] }) => Promise<void>
}

export interface FakeEdgeOptions {
  trust?: TrustStore
  registerRetryMs?: number
  maxInline?: number
  chunkSize?: number
  timeoutMs?: number
}

export function fakeEdge (t: Test, opts: FakeEdgeOptions = {}): FakeEdge {
  const store = createMemoryStore({ historyRetention: 3 })
  const node = { orgId: 'o', destinationType: 'edge', destinationId: 'e1' }
  const sent: UpMessage[] = []
  const link = {
    connected: true,
    publish: async (_topic: string, payload: Buffer) => { sent.push(decodeUp(payload)) }
  }
  const log = captureLogger()
  const notices: string[] = []
  const offered: string[] = []
  const gate: string[] = []
  const refusals = new Map<string, string>()
  const id = (m: ObjectMetadata): string => `${m.objectType}/${m.objectID}#${m.instanceID}`
  const plugins: PluginGate = {
    offer: (m) => { offered.push(id(m)) },
    refusal: (type, oid, inst) => refusals.get(`${type}/${oid}#${inst}`),
    status: () => ({ fake: { ok: true } }),
    pause: () => { gate.push('pause') },
    resume: () => { gate.push('resume') },
    control: async (name, action) => {
      gate.push(`${action} ${name}`)
      if (name !== 'fake') throw new Error(`No plugin ${name}`)
      return action === 'pause' ? 'paused' : action === 'stop' ? 'stopped' : 'running'
    }
  }
  const sync = new EdgeSync({
    store,
    node,
    up: new Uplink(link, node, log),
    notices: { notify: (kind, m) => { notices.push(`${kind} ${id(m)}`) } },
    plugins,
    properties: { site: 's1' },
    transferDir: path.join(t.testdirName, 'transfers'),
    window: 2,
    timeoutMs: opts.timeoutMs ?? 5000,
    maxInline: opts.maxInline ?? 64,
    chunkSize: opts.chunkSize ?? 16,
    ...(opts.trust === undefined ? {} : { trust: opts.trust }),
    ...(opts.registerRetryMs === undefined ? {} : { registerRetryMs: opts.registerRetryMs }),
    log
  })
  t.teardown(async () => { sync.close(); await sync.transfers.close() })
  return {
    sync,
    store,
    sent,
    notices,
    offered,
    refusals,
    gate,
    link,
    say: async (msg) => { await sync.onMessage('down', encode({ v: 1, ...msg } as unknown as Parameters<typeof encode>[0])) }
  }
}
