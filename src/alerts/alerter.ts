/**
 * Operator alerts: each one is written to the audit log first (so `syncctl alerts list` shows it
 * whatever happens next), then sent to every configured webhook (signed and retried, as app
 * webhooks are) and by e-mail. Sending never blocks the caller unless it asks to wait (a test).
 */
import type { Logger } from '../common/log.js'
import type { AuditLog } from '../storage/index.js'
import { postSigned } from '../api/notifier.js'
import type { Mailer } from './mail.js'

export type AlertKind = 'edge_refused' | 'edge_offline' | 'edge_alarm' | 'freshness' | 'test'

export interface Alert {
  kind: AlertKind
  orgId: string
  /** The edge it is about (`type/id`), if one. */
  edge?: string
  /** One line for a subject or a chat message. */
  summary: string
  detail?: Record<string, unknown>
}

export interface AlertChannels {
  webhooks: readonly string[]
  email?: { mailer: Mailer; from: string; to: readonly string[] }
}

export interface DeliveryReport {
  webhooks: Array<{ url: string; ok: boolean }>
  email?: { to: readonly string[]; ok: boolean; error?: string }
}

const MAIL_RETRY_MS = [1000, 5000]

export class Alerter {
  readonly #audit: AuditLog
  readonly #channels: AlertChannels
  readonly #secret: string
  readonly #timeoutMs: number
  readonly #log: Logger
  #closed = false

  constructor (o: { audit: AuditLog; channels: AlertChannels; secret: string; timeoutMs: number; log: Logger }) {
    this.#audit = o.audit
    this.#channels = o.channels
    this.#secret = o.secret
    this.#timeoutMs = o.timeoutMs
    this.#log = o.log
  }

  /** Records the alert, then delivers it (awaited only with `wait`). */
  async raise (a: Alert, wait = false): Promise<DeliveryReport | undefined> {
    const at = new Date().toISOString()
    await this.#audit.append({
      at,
      orgId: a.orgId,
      actor: 'edgesync',
      action: `alert.${a.kind}`,
      target: a.edge ?? a.orgId,
      detail: { summary: a.summary, ...a.detail }
    })
    this.#log.warn('Alert', { kind: a.kind, orgId: a.orgId, edge: a.edge, summary: a.summary })
    const sending = this.#deliver({ ...a, at })
    if (wait) return await sending
    sending.catch((err: unknown) => {
      this.#log.error('Alert delivery failed', { err, kind: a.kind })
    })
    return undefined
  }

  async #deliver (a: Alert & { at: string }): Promise<DeliveryReport> {
    const body = JSON.stringify(a)
    const webhooks = await Promise.all(
      this.#channels.webhooks.map(async (url) => ({
        url,
        ok: await postSigned(url, body, {
          event: `alert.${a.kind}`,
          secret: this.#secret,
          timeoutMs: this.#timeoutMs,
          log: this.#log,
          stopped: () => this.#closed
        })
      }))
    )
    const mail = this.#channels.email
    if (mail === undefined) return { webhooks }
    const text = [
      a.summary,
      '',
      `organization: ${a.orgId}`,
      ...(a.edge === undefined ? [] : [`edge: ${a.edge}`]),
      `at: ${a.at}`,
      ...Object.entries(a.detail ?? {}).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`)
    ].join('\n')
    const subject = `[edgesync] ${a.summary}`
    let error: string | undefined
    for (let attempt = 0; attempt <= MAIL_RETRY_MS.length && !this.#closed; attempt++) {
      try {
        await mail.mailer.send({ from: mail.from, to: [...mail.to], subject, text })
        return { webhooks, email: { to: mail.to, ok: true } }
      } catch (err) {
        error = (err as Error).message
        this.#log.warn('Alert e-mail not sent', { err, attempt })
      }
      const delay = MAIL_RETRY_MS[attempt]
      if (delay !== undefined) await new Promise((resolve) => setTimeout(resolve, delay).unref())
    }
    return { webhooks, email: { to: mail.to, ok: false, ...(error === undefined ? {} : { error }) } }
  }

  close (): void {
    this.#closed = true
    this.#channels.email?.mailer.close()
  }
}
