/** The bootstrap admin of a fresh install: from config, or generated once into a 0600 file (never logged). */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Logger } from '../common/log.js'
import type { Role } from '../common/model.js'
import { generateSecret, hashSecret, verifySecret } from './secrets.js'
import type { Store } from '../storage/index.js'

export interface BootstrapResult {
  appKey: string
  file?: string
}

export async function ensureBootstrapAdmin (
  store: Store,
  opts: {
    key?: string | undefined
    secret?: string | undefined
    dir: string
    orgId: string
    role: Role
    log: Logger
  }
): Promise<BootstrapResult> {
  let key = opts.key
  let secret = opts.secret
  let file: string | undefined
  if (key === undefined || secret === undefined) {
    file = path.join(opts.dir, 'bootstrap-admin.json')
    try {
      const saved = JSON.parse(await readFile(file, 'utf8')) as { appKey: string; secret: string }
      key = saved.appKey
      secret = saved.secret
    } catch {
      key = opts.key ?? 'admin'
      secret = generateSecret()
      await mkdir(opts.dir, { recursive: true, mode: 0o700 })
      await writeFile(file, JSON.stringify({ appKey: key, secret }, null, 2) + '\n', { mode: 0o600 })
      opts.log.info('Generated bootstrap admin credentials', { appKey: key, file })
    }
  }
  const existing = await store.users.get(key)
  if (
    existing === undefined ||
    existing.disabled ||
    existing.role !== opts.role ||
    !(await verifySecret(secret, existing.secretHash))
  ) {
    await store.users.put({
      appKey: key,
      orgId: opts.orgId,
      role: opts.role,
      secretHash: await hashSecret(secret),
      disabled: false,
      created: existing?.created ?? new Date().toISOString()
    })
  }
  return file === undefined ? { appKey: key } : { appKey: key, file }
}
