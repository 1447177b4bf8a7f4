/**
 * A flat table (id -> record) on disk as a snapshot (`<name>.json`) plus an append-only journal
 * (`<name>.journal`, one `[id, record|null]` line per change). A commit appends only the records it
 * changed and fdatasyncs before it resolves, so its cost follows the change, not the table: a
 * delivery ack among 10,000 records writes one line, not the whole file. Commits arriving while an
 * append runs share the next one (group commit). When the journal outgrows the snapshot it is
 * folded into a new snapshot (written durably, then the journal truncated; replaying an old
 * journal over the new snapshot gives the same records, so a crash in between is harmless).
 */
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { StorageError } from '../../common/errors.js'
import { writeFileDurable } from './durable-json-file.js'

const MIN_COMPACT_BYTES = 8 * 1024 * 1024

interface Waiter { resolve: () => void, reject: (e: unknown) => void }

async function readIfExists (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

export class JournaledTable<R> {
  readonly data: Record<string, R> = {}
  readonly #snapshot: string
  readonly #journal: string
  #fh: FileHandle | undefined
  #journalBytes = 0
  #snapshotBytes = 0
  #pending = new Set<string>()
  #waiters: Waiter[] = []
  #running = false

  constructor (snapshotFile: string) {
    this.#snapshot = snapshotFile
    this.#journal = snapshotFile.replace(/\.json$/, '') + '.journal'
  }

  /** Loads the snapshot and replays the journal. */
  async open (): Promise<void> {
    try {
      const snap = await readIfExists(this.#snapshot)
      if (snap !== undefined) {
        Object.assign(this.data, JSON.parse(snap) as Record<string, R>)
        this.#snapshotBytes = Buffer.byteLength(snap)
      }
      const journal = await readIfExists(this.#journal) ?? ''
      const lines = journal.split('\n')
      lines.forEach((line, i) => {
        if (line === '') return
        let entry: [string, R | null]
        try {
          entry = JSON.parse(line) as [string, R | null]
        } catch (err) {
          // Only the last line can be torn (a crash mid-append, never acknowledged).
          if (i >= lines.length - 2) return
          throw new StorageError(`${this.#journal} line ${i + 1} is not valid JSON`, { cause: err })
        }
        if (entry[1] === null) Reflect.deleteProperty(this.data, entry[0]); else this.data[entry[0]] = entry[1]
      })
      this.#journalBytes = Buffer.byteLength(journal)
      this.#fh = await open(this.#journal, 'a', 0o600)
    } catch (err) {
      if (err instanceof StorageError) throw err
      throw new StorageError(`Cannot open ${this.#snapshot}`, { cause: err })
    }
  }

  /** Makes the current state of `ids` durable (a missing id is written as deleted). */
  async commit (ids: Iterable<string>): Promise<void> {
    for (const id of ids) this.#pending.add(id)
    const done = new Promise<void>((resolve, reject) => { this.#waiters.push({ resolve, reject }) })
    if (!this.#running) void this.#drain()
    await done
  }

  async #drain (): Promise<void> {
    this.#running = true
    while (this.#waiters.length > 0) {
      const ids = this.#pending
      const waiters = this.#waiters
      this.#pending = new Set()
      this.#waiters = []
      try {
        const fh = this.#fh
        if (fh === undefined) throw new StorageError('Store is closed')
        if (ids.size > 0) {
          let text = ''
          for (const id of ids) text += JSON.stringify([id, this.data[id] ?? null]) + '\n'
          await fh.appendFile(text)
          await fh.datasync()
          this.#journalBytes += Buffer.byteLength(text)
          if (this.#journalBytes > Math.max(MIN_COMPACT_BYTES, this.#snapshotBytes)) await this.#compact(fh)
        }
        for (const w of waiters) w.resolve()
      } catch (err) {
        const e = err instanceof StorageError ? err : new StorageError(`Cannot write ${this.#journal}`, { cause: err })
        for (const w of waiters) w.reject(e)
      }
    }
    this.#running = false
  }

  async #compact (fh: FileHandle): Promise<void> {
    const text = JSON.stringify(this.data)
    await writeFileDurable(this.#snapshot, text)
    await fh.truncate(0)
    await fh.datasync()
    this.#snapshotBytes = Buffer.byteLength(text)
    this.#journalBytes = 0
  }

  /** Waits for commits in flight, then closes the journal. */
  async close (): Promise<void> {
    if (this.#running || this.#waiters.length > 0) await this.commit([])
    await this.#fh?.close()
    this.#fh = undefined
  }
}
