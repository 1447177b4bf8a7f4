/**
 * A lowdb Adapter that makes each write durable before it resolves: write a temp file, fsync it,
 * rename over the target, fsync the folder. Concurrent writes coalesce (group commit): callers that
 * arrive while a write runs share the next one, which serializes the latest data.
 */
import { open, readFile, rename, unlink } from 'node:fs/promises'
import path from 'node:path'
import type { Adapter } from 'lowdb'
import { StorageError } from '../../common/errors.js'

interface Deferred {
  promise: Promise<void>
  resolve: () => void
  reject: (e: unknown) => void
}
function deferred (): Deferred {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const promise = new Promise<void>((_resolve, _reject) => {
    resolve = _resolve
    reject = _reject
  })
  return { promise, resolve, reject }
}

export async function fsyncDir (dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Directory fsyncs shared by concurrent callers (group commit): a caller's rename is durable once a
 * directory fsync that started after it completes, so callers arriving while one runs share the
 * next. 32 concurrent object puts then cost a few directory fsyncs, not 32 (#22).
 */
export class DirSync {
  readonly #dir: string
  #running: Promise<void> | undefined
  #next: Promise<void> | undefined

  constructor (dir: string) {
    this.#dir = dir
  }

  async sync (): Promise<void> {
    if (this.#running === undefined) return await this.#start()
    this.#next ??= this.#running.catch(() => {}).then(async () => {
      this.#next = undefined
      await this.#start()
    })
    return await this.#next
  }

  async #start (): Promise<void> {
    const run = fsyncDir(this.#dir)
    this.#running = run
    try {
      await run
    } finally {
      if (this.#running === run) this.#running = undefined
    }
  }
}

export async function writeFileDurable (file: string, text: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`)
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
  await fsyncDir(path.dirname(file))
}

export class DurableJsonFile<T> implements Adapter<T> {
  readonly #file: string
  #running = false
  #next: Deferred | undefined
  #latest: T | undefined

  constructor (file: string) {
    this.#file = file
  }

  async read (): Promise<T | null> {
    let text: string
    try {
      text = await readFile(this.#file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw new StorageError(`Cannot read ${this.#file}`, { cause: err })
    }
    try {
      return JSON.parse(text) as T
    } catch (err) {
      throw new StorageError(`${this.#file} is not valid JSON`, { cause: err })
    }
  }

  async write (data: T): Promise<void> {
    this.#latest = data
    if (!this.#running) return await this.#run()
    this.#next ??= deferred()
    return await this.#next.promise
  }

  async #run (): Promise<void> {
    this.#running = true
    try {
      await writeFileDurable(this.#file, JSON.stringify(this.#latest))
    } catch (err) {
      throw new StorageError(`Cannot write ${this.#file}`, { cause: err })
    } finally {
      this.#running = false
      const waiting = this.#next
      this.#next = undefined
      if (waiting !== undefined) this.#run().then(waiting.resolve, waiting.reject)
    }
  }
}

export async function removeIfExists (file: string): Promise<void> {
  try {
    await unlink(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}
