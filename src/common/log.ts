/** The only winston import. A narrow Logger interface so tests can record and services stay decoupled. */
import winston from 'winston'

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'
export type LogMeta = Record<string, unknown>

export interface Logger {
  error: (msg: string, meta?: LogMeta) => void
  warn: (msg: string, meta?: LogMeta) => void
  info: (msg: string, meta?: LogMeta) => void
  debug: (msg: string, meta?: LogMeta) => void
  /** A logger whose every line carries `bindings` (e.g. `{ component: 'css.api' }`). */
  child: (bindings: LogMeta) => Logger
}

const SECRET_KEY = /pass(word)?|secret|token|authorization|private[-_]?key|^key$|credential/i
const REDACTED = '[redacted]'

/** Serializes an Error with its cause chain; plain JSON would write `{}` (winstonjs/winston#1243). */
export function serializeError (err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err
  const out: Record<string, unknown> = { name: err.name, message: err.message }
  const code = (err as { code?: unknown }).code
  if (code !== undefined) out.code = code
  if (err.stack !== undefined) out.stack = err.stack
  if (err.cause !== undefined && depth < 5) out.cause = serializeError(err.cause, depth + 1)
  return out
}

/** Replaces values under secret-looking keys, recursively, without touching the caller's object. */
export function redact (value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value
  if (value instanceof Error) return serializeError(value)
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1))
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== '' ? REDACTED : redact(v, depth + 1)
  }
  return out
}

const redactFormat = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (key === 'level' || key === 'message') continue
    const v = info[key]
    info[key] = SECRET_KEY.test(key) && v !== undefined ? REDACTED : redact(v)
  }
  return info
})

class WinstonLogger implements Logger {
  #w: winston.Logger | undefined
  readonly #make: () => winston.Logger
  /**
   * Which levels are on. winston builds and streams a line before its level filter drops it, and
   * its own level check walks the transports on every call: asked once at the root (the level is
   * fixed at creation; hot paths log on every request, ack and register), children inherit it.
   */
  readonly #on: Readonly<Record<LogLevel, boolean>>

  /** `make` runs at the first line logged: a child made per message costs nothing unless it logs. */
  constructor (make: () => winston.Logger, on: Readonly<Record<LogLevel, boolean>>) {
    this.#make = make
    this.#on = on
  }

  #logger (): winston.Logger {
    this.#w ??= this.#make()
    return this.#w
  }

  error (msg: string, meta?: LogMeta): void {
    if (this.#on.error) this.#logger().error(msg, meta)
  }

  warn (msg: string, meta?: LogMeta): void {
    if (this.#on.warn) this.#logger().warn(msg, meta)
  }

  info (msg: string, meta?: LogMeta): void {
    if (this.#on.info) this.#logger().info(msg, meta)
  }

  debug (msg: string, meta?: LogMeta): void {
    if (this.#on.debug) this.#logger().debug(msg, meta)
  }

  child (bindings: LogMeta): Logger {
    return new WinstonLogger(() => this.#logger().child(bindings), this.#on)
  }
}

export interface LoggerOptions {
  level: LogLevel
  /** Where lines go; defaults to stderr so stdout stays free for a CLI's output. */
  stream?: NodeJS.WritableStream
}

/** JSON lines: `{"level","message","timestamp",...}`, secrets redacted, errors under `err`. */
export function createLogger (opts: LoggerOptions): Logger {
  const transport = new winston.transports.Stream({ stream: opts.stream ?? process.stderr })
  const w = winston.createLogger({
    level: opts.level,
    format: winston.format.combine(redactFormat(), winston.format.timestamp(), winston.format.json()),
    transports: [transport]
  })
  const on = {
    error: w.isErrorEnabled(),
    warn: w.isWarnEnabled(),
    info: w.isInfoEnabled(),
    debug: w.isDebugEnabled()
  }
  return new WinstonLogger(() => w, on)
}

/** A logger that drops everything, for library callers that pass none. */
export const silentLogger: Logger = {
  error () {},
  warn () {},
  info () {},
  debug () {},
  child () {
    return silentLogger
  }
}
