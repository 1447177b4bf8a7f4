/** Starts a real CSS and ESSs in this process (real Aedes broker on loopback, real stores, real HTTP). */
import type { Test } from 'tap'
import { buildConfig } from '../../src/common/config/load.js'
import { createLogger, silentLogger, type Logger } from '../../src/common/log.js'
import { startCss as startCloudSyncService, type CssHandle } from '../../src/app/css.js'
import { startEss as startEdgeSyncService, type EssHandle } from '../../src/app/ess.js'

/** Set SYNC_TEST_LOG=debug to see the services' logs while debugging a test. */
const log: Logger = process.env.SYNC_TEST_LOG === undefined ? silentLogger : createLogger({ level: process.env.SYNC_TEST_LOG as 'debug' })

export const ADMIN = { key: 'root', secret: 'root-secret' }
export const APP = { key: 'app', secret: 'app-secret' }

export function basic (c: { key: string, secret: string }): string {
  return `Basic ${Buffer.from(`${c.key}:${c.secret}`).toString('base64')}`
}

export async function startCss (t: Test, root: string, extra: Record<string, string | number | boolean> = {}): Promise<CssHandle> {
  const cfg = buildConfig({}, {}, { PersistenceRootPath: root, ListeningPort: 0, MqttListeningPort: 0, AdminKey: ADMIN.key, AdminSecret: ADMIN.secret, ...extra })
  const css = await startCloudSyncService(cfg, log.child({ svc: 'css' }))
  t.teardown(() => css.close())
  return css
}

/** Enrolls a node and returns its secret; a node enrolled already gets a new one (rotate). */
export async function enroll (css: CssHandle, org: string, type: string, id: string): Promise<string> {
  const url = `${css.restUrl}/api/v1/nodes/${org}/${type}/${id}/enroll`
  let res = await fetch(url, { method: 'POST', headers: { authorization: basic(ADMIN) } })
  if (res.status === 409) res = await fetch(`${url}?rotate=true`, { method: 'POST', headers: { authorization: basic(ADMIN) } })
  if (res.status !== 201) throw new Error(`enroll ${org}/${type}/${id}: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { secret: string }).secret
}

/**
 * `SYNC_TEST_PROTOCOL=http` runs every ESS of a test over the HTTP link instead of MQTT (the
 * files under test/e2e/over-http/ run the same scenarios that way).
 */
export function channelConfig (restUrl: string): Record<string, string> {
  const p = process.env.SYNC_TEST_PROTOCOL
  return p === undefined ? {} : { CommunicationProtocol: p, HttpCssAddress: restUrl }
}

/** The same for an ESS process configured by environment variables. */
export function channelEnv (restUrl: string): Record<string, string> {
  const p = process.env.SYNC_TEST_PROTOCOL
  return p === undefined ? {} : { COMMUNICATION_PROTOCOL: p, HTTP_CSS_ADDRESS: restUrl }
}

export async function startEss (t: Test, css: CssHandle, root: string, node: { org: string, type: string, id: string, props?: string }, secret?: string, extra: Record<string, string | number | boolean> = {}): Promise<EssHandle> {
  const s = secret ?? await enroll(css, node.org, node.type, node.id)
  const cfg = buildConfig({}, {}, {
    NodeType: 'ESS',
    OrgID: node.org,
    DestinationType: node.type,
    DestinationID: node.id,
    ...(s === '' ? {} : { NodeSecret: s }), // '' = no secret (certificate login)
    NodeProperties: node.props ?? '',
    BrokerAddress: css.mqttUrls[0] ?? '',
    PersistenceRootPath: root,
    ListeningPort: 0,
    AdminKey: APP.key,
    AdminSecret: APP.secret,
    ...channelConfig(css.restUrl),
    ...extra
  })
  const ess = await startEdgeSyncService(cfg, log.child({ svc: `ess ${node.id}` }))
  t.teardown(() => ess.close())
  return ess
}

export async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
