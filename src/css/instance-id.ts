/**
 * A CSS instance's stable name: configured, or generated once and kept in its data folder. On an
 * external broker it is the MQTT client id, so a restarted CSS resumes its own persistent session
 * (and the messages queued for it) instead of leaving a dead session in the shared subscription.
 */
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'

export async function cssInstanceId (configured: string | undefined, dir: string): Promise<string> {
  if (configured !== undefined && configured !== '') return configured
  const file = path.join(dir, 'instance-id')
  try {
    const saved = (await readFile(file, 'utf8')).trim()
    if (/^[A-Za-z0-9_-]{1,64}$/.test(saved)) return saved
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const id = randomUUID().slice(0, 8)
  await mkdir(dir, { recursive: true })
  await writeFile(`${file}.tmp`, `${id}\n`)
  await rename(`${file}.tmp`, file)
  return id
}
