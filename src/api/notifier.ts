/**
 * Change notices for apps: a server-sent-events stream and webhooks (on the ESS: objects from the
 * cloud; on the CSS: objects from edges). Webhook calls carry an HMAC-SHA256 of the body (header
 * `x-sync-signature: sha256=<hex>`, key in the service's webhook-secret file) and are retried
 * with backoff; they never block the sync path.
 */
import { createHmac } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ValidationError } from '../common/errors.js'
import { generateSecret } from '../security/index.js'
import type { ServerResponse } from 'node:http'
import type { Logger } from '../common/log.js'
import type { ObjectMetadata } from '../common/model.js'
import type { SettingStore, WebhookStore } from '../storage/index.js'

export type NoticeKind = 'update' | 'delete'
const RETRY_DELAYS_MS = [500, 2000, 8000]

interface SseClient {
  res: ServerResponse
  objectType?: string
}

export class Notifier {
  readonly #clients = new Set<SseClient>()
  readonly #hooks: WebhookStore
  readonly #orgId: string | undefined
  readonly #secret: string
  readonly #timeoutMs: number
  readonly #log: Logger
  #closed = false
  /** The key its webhook calls are signed with (operator alerts use the same). */
  get secret (): string {
    return this.#secret
  }

  /** Webhook calls made, for health and tests. */
  delivered = 0
  failed = 0

  /** `orgId`: the one org of an ESS; a CSS (many orgs) leaves it out: each object's org is used. */
  constructor (opts: { hooks: WebhookStore; orgId?: string; secret: string; timeoutMs: number; log: Logger }) {
    this.#hooks = opts.hooks
    this.#orgId = opts.orgId
    this.#secret = opts.secret
    this.#timeoutMs = opts.timeoutMs
    this.#log = opts.log
  }

  /** Attaches an SSE stream; `objectType` narrows it to one type. */
  attach (res: ServerResponse, objectType?: string): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive'
    })
    res.write(': connected\n\n')
    const c: SseClient = objectType === undefined ? { res } : { res, objectType }
    this.#clients.add(c)
    res.on('close', () => this.#clients.delete(c))
  }

  notify (kind: NoticeKind, meta: ObjectMetadata): void {
    const body = JSON.stringify({ event: kind, ...meta })
    for (const c of this.#clients) {
      if (c.objectType === undefined || c.objectType === meta.objectType) {
        c.res.write(`event: ${kind}\ndata: ${body}\n\n`)
      }
    }
    this.#hooks.list(this.#orgId ?? meta.destinationOrgID, meta.objectType).then(
      (hooks) => {
        for (const h of hooks) void this.#call(h.url, kind, body)
      },
      (err: unknown) => {
        this.#log.error('Cannot read webhooks', { err })
      }
    )
  }

  signature (body: string): string {
    return signBody(this.#secret, body)
  }

  async #call (url: string, kind: NoticeKind, body: string): Promise<void> {
    const ok = await postSigned(url, body, {
      event: kind,
      secret: this.#secret,
      timeoutMs: this.#timeoutMs,
      log: this.#log,
      stopped: () => this.#closed
    })
    if (ok) this.delivered++
    else this.failed++
  }

  close (): void {
    this.#closed = true
    for (const c of this.#clients) c.res.end()
    this.#clients.clear()
  }
}

/** HMAC-SHA256 of a webhook body, as `x-sync-signature` carries it. */
export function signBody (secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

/**
 * POSTs a JSON body, signed, retried with backoff (500 ms, 2 s, 8 s) until a 2xx; false once every
 * attempt failed (or `stopped` says the service is closing).
 */
export async function postSigned (
  url: string,
  body: string,
  o: { event: string; secret: string; timeoutMs: number; log: Logger; stopped?: () => boolean }
): Promise<boolean> {
  for (let attempt = 0; attempt <= RETRY_DELAYS_MS.length && o.stopped?.() !== true; attempt++) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sync-event': o.event, 'x-sync-signature': signBody(o.secret, body) },
        body,
        signal: AbortSignal.timeout(o.timeoutMs)
      })
      if (res.ok) return true
      o.log.warn('Webhook answered with an error', { url, status: res.status, attempt })
    } catch (err) {
      o.log.warn('Webhook call failed', { url, err, attempt })
    }
    const delay = RETRY_DELAYS_MS[attempt]
    if (delay !== undefined) await new Promise((resolve) => setTimeout(resolve, delay).unref())
  }
  return false
}

/** The key webhook signatures are made with, generated once per service (file `webhook-secret`, mode 0600). */
/**
 * The CSS's webhook secret, one for every instance: kept in the store's settings (first writer
 * wins); a secret an older release kept in the data folder is adopted. A copy is written to
 * `<dir>/webhook-secret` (0600), where the receivers' operators read it.
 */
export async function sharedWebhookSecret (
  settings: Pick<SettingStore, 'get' | 'putIfAbsent'>,
  legacyDir: string
): Promise<string> {
  const file = path.join(legacyDir, 'webhook-secret')
  let local: string | undefined
  try {
    local = (await readFile(file, 'utf8')).trim()
  } catch {}
  const secret =
    (await settings.get('webhook-secret')) ??
    (await settings.putIfAbsent('webhook-secret', local !== undefined && local !== '' ? local : generateSecret()))
  if (secret !== local) {
    await mkdir(legacyDir, { recursive: true, mode: 0o700 })
    await writeFile(`${file}.tmp`, secret + '\n', { mode: 0o600 })
    await rename(`${file}.tmp`, file)
  }
  return secret
}

export async function webhookSecret (dir: string): Promise<string> {
  const file = path.join(dir, 'webhook-secret')
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch {
    const secret = generateSecret()
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFile(file, secret + '\n', { mode: 0o600 })
    return secret
  }
}

/** The body of a webhook registration (Open Horizon's): register or delete a URL for a type. */
export interface WebhookChange { action: 'register' | 'delete'; url: string }
export const webhookChangeSchema = {
  type: 'object',
  required: ['action', 'url'],
  properties: { action: { enum: ['register', 'delete'] }, url: { type: 'string', maxLength: 2048 } }
} as const

/** Applies a webhook registration for one org and type (http and https URLs only). */
export async function changeWebhook (
  hooks: WebhookStore, orgId: string, objectType: string, change: WebhookChange
): Promise<void> {
  let url: URL
  try {
    url = new URL(change.url)
  } catch {
    throw new ValidationError('/url: not a URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValidationError('/url: only http and https webhooks')
  }
  if (change.action === 'delete') {
    await hooks.remove(orgId, objectType, url.href)
    return
  }
  await hooks.put({ orgId, objectType, url: url.href, created: new Date().toISOString() })
}
