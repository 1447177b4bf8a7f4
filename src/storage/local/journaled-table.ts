/**
 * A flat table (id -> record) on disk as a snapshot (`<name>.json`) plus an append-only journal
 * (`<name>.journal`, one `[id, record|null]` line per change). A commit appends only the records it
 * changed and fdatasyncs before it resolves, so its cost follows the change, not the table: a
 * delivery ack among 10,000 records writes one line, not the whole file. Commits arriving while an
 * append runs share the next one (group commit). When the journal outgrows the snapshot it is
 * folded into a new snapshot (written durably, then the journal truncated; replaying an old
 * journal over the new snapshot gives the same records, so a crash in between is harmless).
 *
 * Recovery on open, never a refusal to start: a torn last line (a crash or a full disk mid-append,
 * never acknowledged) is cut off before anything is appended after it; a corrupt line in the
 * middle (damage on disk) is skipped, the journal as found is kept as `<name>.journal.corrupt-<time>`
 * and the table is folded into a fresh snapshot at once. `recovered` says what happened.
 */
import { copyFile, open, readFile, truncate, type FileHandle } from 'node:fs/promises'
import { StorageError } from '../../common/errors.js'
import { writeFileDurable } from './durable-json-file.js'

const MIN_COMPACT_BYTES = 8 * 1024 * 1024

interface Waiter {
  resolve: () => void
  reject: (e: unknown) => void
}

/** One journal line, or undefined when it is not a well-formed `[id, record|null]`. */
function parseEntry<R> (line: string): [string, R | null] | undefined {
  try {
    const e = JSON.parse(line) as unknown
    return Array.isArray(e) && e.length === 2 && typeof e[0] === 'string' && typeof e[1] === 'object'
      ? (e as [string, R | null])
      : undefined
  } catch {
    return undefined
  }
}

async function readIfExists (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * How the table's records live in memory. By default a flat `id -> record` object (`data`); a
 * table whose in-memory shape is another (the object table) maps ids to records itself.
 */
export interface TableView<R> {
  get: (id: string) => R | undefined
  /** `undefined`: the id is deleted. */
  set: (id: string, record: R | undefined) => void
  /** Every record, for a snapshot. */
  all: () => Record<string, R>
}

/** What `open` had to repair. */
export interface JournalRecovery {
  /** Bytes of an unterminated last line that were cut off. */
  tornBytes: number
  /** 1-based numbers of corrupt lines that were skipped. */
  corruptLines: number[]
  /** Where the journal as found was kept, when lines were skipped. */
  savedAs?: string
}

export class JournaledTable<R> {
  readonly data: Record<string, R> = {}
  recovered: JournalRecovery = { tornBytes: 0, corruptLines: [] }
  readonly #view: TableView<R>
  readonly #snapshot: string
  readonly #journal: string
  #fh: FileHandle | undefined
  #journalBytes = 0
  #snapshotBytes = 0
  #pending = new Set<string>()
  #waiters: Waiter[] = []
  #running = false
  /** An append failed part-way (a full disk): the journal must be cut back before the next one. */
  #torn = false

  constructor (snapshotFile: string, view?: TableView<R>) {
    const data = this.data
    this.#view = view ?? {
      get: (id) => data[id],
      set: (id, r) => {
        if (r === undefined) Reflect.deleteProperty(data, id)
        else data[id] = r
      },
      all: () => data
    }
    this.#snapshot = snapshotFile
    this.#journal = snapshotFile.replace(/\.json$/, '') + '.journal'
  }

  /** Loads the snapshot and replays the journal. */
  async open (): Promise<void> {
    try {
      const snap = await readIfExists(this.#snapshot)
      if (snap !== undefined) {
        for (const [id, r] of Object.entries(JSON.parse(snap) as Record<string, R>)) this.#view.set(id, r)
        this.#snapshotBytes = Buffer.byteLength(snap)
      }
      let journal = (await readIfExists(this.#journal)) ?? ''
      // An unterminated last line was never acknowledged: cut it off, or the next append would
      // continue it and make a good record unreadable.
      const end = journal.lastIndexOf('\n') + 1
      if (end < journal.length) {
        this.recovered.tornBytes = Buffer.byteLength(journal.slice(end))
        journal = journal.slice(0, end)
        await truncate(this.#journal, Buffer.byteLength(journal))
      }
      journal.split('\n').forEach((line, i) => {
        if (line === '') return
        const entry = parseEntry<R>(line)
        if (entry === undefined) {
          this.recovered.corruptLines.push(i + 1)
          return
        }
        this.#view.set(entry[0], entry[1] ?? undefined)
      })
      this.#journalBytes = Buffer.byteLength(journal)
      this.#fh = await open(this.#journal, 'a', 0o600)
      if (this.recovered.corruptLines.length > 0) {
        this.recovered.savedAs = `${this.#journal}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`
        await copyFile(this.#journal, this.recovered.savedAs)
        await this.#compact(this.#fh)
      }
    } catch (err) {
      if (err instanceof StorageError) throw err
      throw new StorageError(`Cannot open ${this.#snapshot}`, { cause: err })
    }
  }

  /** Makes the current state of `ids` durable (a missing id is written as deleted). */
  async commit (ids: Iterable<string>): Promise<void> {
    for (const id of ids) this.#pending.add(id)
    const done = new Promise<void>((resolve, reject) => {
      this.#waiters.push({ resolve, reject })
    })
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
        if (this.#torn) {
          // Bytes of a failed append would glue onto the next line and corrupt it: cut them off.
          await fh.truncate(this.#journalBytes)
          this.#torn = false
        }
        if (ids.size > 0) {
          let text = ''
          for (const id of ids) text += JSON.stringify([id, this.#view.get(id) ?? null]) + '\n'
          this.#torn = true
          await fh.appendFile(text)
          await fh.datasync()
          this.#torn = false
          this.#journalBytes += Buffer.byteLength(text)
          if (this.#journalBytes > Math.max(MIN_COMPACT_BYTES, this.#snapshotBytes)) await this.#compact(fh)
        }
        for (const w of waiters) w.resolve()
      } catch (err) {
        const e =
          err instanceof StorageError
            ? err
            : new StorageError(`Cannot write ${this.#journal}`, { cause: err })
        for (const w of waiters) w.reject(e)
      }
    }
    this.#running = false
  }

  async #compact (fh: FileHandle): Promise<void> {
    const text = JSON.stringify(this.#view.all())
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
