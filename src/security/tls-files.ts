/** Reads the PEM files named in sync.conf, failing with the key's name when one cannot be read. */
import { readFileSync } from 'node:fs'
import type { SyncConfig } from '../common/config/schema.js'
import { ConfigError, SyncErrorCode } from '../common/errors.js'

type PemKey = 'ServerCertificate' | 'ServerKey' | 'CaCertificate' | 'ClientCertificate' | 'ClientKey'

function readPem (cfg: Readonly<SyncConfig>, key: PemKey): string | undefined {
  const file = cfg[key]
  if (file === undefined) return undefined
  try {
    const text = readFileSync(file, 'utf8')
    if (!text.includes('-----BEGIN ')) throw new ConfigError(SyncErrorCode.CONFIG_INVALID, 'not a PEM file')
    return text
  } catch (err) {
    throw new ConfigError(
      SyncErrorCode.CONFIG_INVALID,
      `${key}: cannot read ${file}: ${(err as Error).message}`,
      { cause: err }
    )
  }
}

/** Server side: certificate, key, and the CA of client certificates (when set). */
export function serverTls (cfg: Readonly<SyncConfig>): { cert: string; key: string; ca?: string } | undefined {
  const cert = readPem(cfg, 'ServerCertificate')
  const key = readPem(cfg, 'ServerKey')
  if (cert === undefined || key === undefined) return undefined
  const ca = readPem(cfg, 'CaCertificate')
  return { cert, key, ...(ca === undefined ? {} : { ca }) }
}

/** Client side (ESS to broker): the pinned CA and an optional client certificate. */
export function clientTls (cfg: Readonly<SyncConfig>): { ca?: string; cert?: string; key?: string } {
  const ca = readPem(cfg, 'CaCertificate')
  const cert = readPem(cfg, 'ClientCertificate')
  const key = readPem(cfg, 'ClientKey')
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key })
  }
}
