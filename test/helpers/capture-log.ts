/** A logger that keeps every line, for tests that assert what a service said (or did not say). */
import type { Logger, LogMeta } from '../../src/common/log.js'

export interface CapturedLine { level: string, msg: string, meta: LogMeta }

export function captureLogger (lines: CapturedLine[] = [], bindings: LogMeta = {}): Logger & { lines: CapturedLine[] } {
  const at = (level: string) => (msg: string, meta: LogMeta = {}): void => { lines.push({ level, msg, meta: { ...bindings, ...meta } }) }
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (b) => captureLogger(lines, { ...bindings, ...b }) }
}
