/**
 * syncctl's connection to the CSS: settings from flags, environment or a profile file, and HTTP
 * errors turned into exit codes scripts can rely on.
 */
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Command } from 'commander'

export interface Io {
  stdout: (s: string) => void
  stderr: (s: string) => void
  fetch: typeof fetch
  env: NodeJS.ProcessEnv
  /** Told each structured result (every CSS answer, a command's own result): `--json` prints it. */
  result?: (value: unknown) => void
}

/** Exit codes (also listed in `syncctl --help`). */
export const EXIT = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  AUTH: 4,
  REJECTED: 5,
  UNAVAILABLE: 6
} as const

export class CliError extends Error {
  readonly exitCode: number
  /** The HTTP status, when the CSS answered with an error. */
  readonly status: number | undefined
  /** The CSS's error code (`SYNC_ERR_*`) and details (e.g. each edge's problems), when it gave them. */
  readonly code: string | undefined
  readonly details: unknown
  constructor (
    message: string,
    exitCode: number,
    status?: number,
    extra: { code?: string, details?: unknown } = {}
  ) {
    super(message)
    this.exitCode = exitCode
    this.status = status
    this.code = extra.code
    this.details = extra.details
  }
}

/** TLS failures that retrying will not fix: the CA is not trusted (or the name does not match). */
const TLS_TRUST = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID'
])

/** Why a request never got an answer, and what to do about it. */
function unreachable (url: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  const code = cause?.code
  let why = cause?.message ?? (err as Error).message
  if (code !== undefined && TLS_TRUST.has(code)) {
    why = `its TLS certificate is not trusted (${code}). If the CSS uses a private CA, run syncctl with ` +
      'NODE_EXTRA_CA_CERTS=certs/ca.pem (the CA the certificates were made with)'
  } else if (code === 'ECONNREFUSED') {
    why = 'connection refused: is the CSS running there? (set --url or SYNC_URL)'
  } else if (code === 'ENOTFOUND') {
    why = 'unknown host name (check --url or SYNC_URL)'
  }
  return new CliError(`Cannot reach ${url}: ${why}`, EXIT.UNAVAILABLE, undefined, { code: 'SYNC_ERR_UNAVAILABLE' })
}

/** A problem's details as lines: each edge's problems by path and rule, or each message. */
function detailLines (details: unknown): string[] {
  if (!Array.isArray(details)) return []
  return details.flatMap((d: unknown) => {
    const e = d as { edge?: string, problems?: Array<{ path: string, rule: string, message: string }> }
    if (e.edge !== undefined && Array.isArray(e.problems)) {
      return e.problems.map((p) => `  ${e.edge ?? ''}  ${p.path}  ${p.rule}  ${p.message}`)
    }
    return [`  ${typeof d === 'string' ? d : JSON.stringify(d)}`]
  })
}

function exitFor (status: number): number {
  if (status === 404) return EXIT.NOT_FOUND
  if (status === 401 || status === 403) return EXIT.AUTH
  if (status === 429 || status >= 500) return EXIT.UNAVAILABLE
  return EXIT.REJECTED
}

interface Profile {
  url?: string
  key?: string
  secret?: string
}

/**
 * `--profile NAME` (or SYNC_PROFILE) from SYNCCTL_CONFIG or ~/.config/edgesync/syncctl.json:
 * `{ "profiles": { NAME: { url, key, secret } } }`.
 */
function profile (io: Io, name: string | undefined): Profile {
  if (name === undefined) return {}
  const file = io.env.SYNCCTL_CONFIG ?? path.join(os.homedir(), '.config', 'edgesync', 'syncctl.json')
  let all: { profiles?: Record<string, Profile> }
  try {
    all = JSON.parse(readFileSync(file, 'utf8')) as typeof all
  } catch (err) {
    throw new CliError(`Cannot read profile file ${file}: ${(err as Error).message}`, EXIT.USAGE)
  }
  const p = all.profiles?.[name]
  if (p === undefined) throw new CliError(`No profile "${name}" in ${file}`, EXIT.USAGE)
  return p
}

export function connection (cmd: Command, io: Io): { url: string; auth: string } {
  const o = cmd.optsWithGlobals<{ url?: string; key?: string; secret?: string; profile?: string }>()
  const p = profile(io, o.profile ?? io.env.SYNC_PROFILE)
  const url = o.url ?? io.env.SYNC_URL ?? p.url ?? 'http://127.0.0.1:8080'
  const key = o.key ?? io.env.SYNC_KEY ?? p.key ?? ''
  const secret = o.secret ?? io.env.SYNC_SECRET ?? p.secret ?? ''
  return { url: url.replace(/\/+$/, ''), auth: `Basic ${Buffer.from(`${key}:${secret}`).toString('base64')}` }
}

export interface Connection {
  url: string
  auth: string
}

/** One REST call; JSON in and out unless `body` is a Buffer (sent as octet-stream) or `raw` is set. */
export async function call (
  io: Io,
  cmd: Command,
  method: string,
  urlPath: string,
  body?: unknown,
  raw = false
): Promise<unknown> {
  return await request(io, connection(cmd, io), method, urlPath, body, raw)
}

const RATE_LIMIT_RETRIES = 5

/** `call` on an explicit connection. A 429 is waited out (its Retry-After, at most 5 s) a few times. */
export async function request (
  io: Io,
  c: Connection,
  method: string,
  urlPath: string,
  body?: unknown,
  raw = false
): Promise<unknown> {
  const headers: Record<string, string> = { authorization: c.auth }
  let payload: string | Buffer | undefined
  if (Buffer.isBuffer(body)) {
    headers['content-type'] = 'application/octet-stream'
    payload = body
  } else if (body !== undefined) {
    headers['content-type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  let res: Response
  for (let attempt = 0; ; attempt++) {
    try {
      res = await io.fetch(`${c.url}${urlPath}`, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload })
      })
    } catch (err) {
      throw unreachable(c.url, err)
    }
    if (res.status !== 429 || attempt >= RATE_LIMIT_RETRIES) break
    await res.arrayBuffer()
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(5, Number(res.headers.get('retry-after') ?? 1) || 1) * 1000)
    )
  }
  if (!res.ok) {
    const text = await res.text()
    let detail = text
    let problem: { code?: string; detail?: string; errors?: unknown } = {}
    try {
      problem = JSON.parse(text) as typeof problem
      if (problem.code !== undefined) detail = `${problem.code}: ${problem.detail ?? ''}`
    } catch {}
    const lines = detailLines(problem.errors)
    throw new CliError(
      [`${method} ${urlPath}: HTTP ${res.status} ${detail}`.trim(), ...lines].join('\n'),
      exitFor(res.status),
      res.status,
      { ...(problem.code === undefined ? {} : { code: problem.code }), details: problem.errors }
    )
  }
  if (raw) return Buffer.from(await res.arrayBuffer())
  const text = await res.text()
  const value: unknown = text === '' ? undefined : JSON.parse(text)
  if (value !== undefined) io.result?.(value)
  return value
}

/** Prints rows as an aligned table, or JSON with --json. */
export function print (
  io: Io,
  json: boolean | undefined,
  rows: Array<Record<string, unknown>>,
  columns: string[]
): void {
  if (json === true) {
    io.stdout(JSON.stringify(rows, null, 2) + '\n')
    return
  }
  const cell = (v: unknown): string =>
    v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)
  const width = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(width[i] ?? 0))
      .join('  ')
      .trimEnd() + '\n'
  io.stdout(line(columns.map((c) => c.toUpperCase())))
  for (const r of rows) io.stdout(line(columns.map((c) => cell(r[c]))))
}
