/** Operator alerts on the CSS as sync.conf configures them: the channels, the rules, the routes. */
import type { FastifyInstance } from 'fastify'
import type { SyncConfig } from '../common/config/schema.js'
import { ConfigError, SyncErrorCode } from '../common/errors.js'
import type { Logger } from '../common/log.js'
import { nameSchema } from '../api/server.js'
import { Alerter, type AlertChannels } from '../alerts/alerter.js'
import { smtpMailer } from '../alerts/mail.js'
import { requireOrg } from '../security/acl.js'
import type { Store } from '../storage/index.js'
import { AlertRules } from './alert-rules.js'

const list = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)

function channels (cfg: Readonly<SyncConfig>): AlertChannels {
  const webhooks = list(cfg.AlertWebhooks)
  for (const u of webhooks) {
    if (!/^https?:\/\//.test(u)) {
      throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `AlertWebhooks: ${u} is not an http(s) URL`)
    }
  }
  const to = list(cfg.AlertEmailTo)
  if (to.length === 0) return { webhooks }
  if (cfg.SmtpUrl === undefined) {
    throw new ConfigError(SyncErrorCode.CONFIG_INVALID, 'AlertEmailTo is set but SmtpUrl is not')
  }
  const mailer = smtpMailer(cfg.SmtpUrl, cfg.WebhookTimeoutMs)
  return { webhooks, email: { mailer, from: cfg.AlertEmailFrom, to } }
}

/** The freshness target as a share (0..1). */
export function freshnessTarget (cfg: Readonly<SyncConfig>): number {
  const v = Number(cfg.AlertFreshnessTarget)
  if (!Number.isFinite(v) || v < 0 || v > 1) {
    throw new ConfigError(SyncErrorCode.CONFIG_INVALID, `AlertFreshnessTarget ${cfg.AlertFreshnessTarget} is not a share between 0 and 1`)
  }
  return v
}

export function startAlerting (
  cfg: Readonly<SyncConfig>,
  store: Store,
  secret: string,
  sweep: (work: () => Promise<void>) => Promise<boolean>,
  log: Logger
): { alerter: Alerter; rules: AlertRules; close: () => void } {
  freshnessTarget(cfg)
  const alerter = new Alerter({
    audit: store.audit,
    channels: channels(cfg),
    secret,
    timeoutMs: cfg.WebhookTimeoutMs,
    log
  })
  const rules = new AlertRules({ alerter, store, offlineAfterMs: cfg.AlertOfflineAfterSeconds * 1000, sweep, log })
  return {
    alerter,
    rules,
    close: () => {
      rules.close()
      alerter.close()
    }
  }
}

const orgParams = { type: 'object', properties: { orgID: nameSchema }, required: ['orgID'] } as const
// Fleet-wide alerts (EMS freshness) are recorded under org `*`: a sync admin lists them there.
const listParams = {
  type: 'object',
  properties: { orgID: { anyOf: [nameSchema, { const: '*' }] } },
  required: ['orgID']
} as const

export function registerAlertRoutes (app: FastifyInstance, store: Store, alerter: Alerter): void {
  app.get<{ Params: { orgID: string } }>(
    '/api/v1/alerts/:orgID',
    {
      schema: {
        summary: 'Alerts raised for an org, newest first (from the audit log; `*`: fleet-wide ones, sync admins)',
        params: listParams
      }
    },
    async (req) => {
      const orgId = req.params.orgID
      requireOrg(req.identity, orgId, true)
      const entries = await store.audit.list({ orgId, limit: 1000 })
      return entries
        .filter((e) => e.action.startsWith('alert.'))
        .map((e) => ({
          at: e.at,
          kind: e.action.slice('alert.'.length),
          target: e.target,
          summary: typeof e.detail?.summary === 'string' ? e.detail.summary : '',
          detail: e.detail ?? {}
        }))
        .sort((a, b) => b.at.localeCompare(a.at))
    }
  )
  app.post<{ Params: { orgID: string } }>(
    '/api/v1/alerts/:orgID/test',
    { schema: { summary: 'Sends a test alert through every channel and reports how each went', params: orgParams } },
    async (req) => {
      const orgId = req.params.orgID
      const who = requireOrg(req.identity, orgId, true)
      return await alerter.raise({ kind: 'test', orgId, summary: `Test alert for ${orgId} (asked by ${who.appKey})` }, true)
    }
  )
}
