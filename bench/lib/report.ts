import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export function printTable (title: string, rows: Array<Record<string, string | number>>): void {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(width[i] ?? 0)).join('  ')
  process.stdout.write(`\n${title}\n${line(cols)}\n${line(width.map((w) => '-'.repeat(w)))}\n`)
  for (const r of rows) process.stdout.write(line(cols.map((c) => String(r[c] ?? ''))) + '\n')
}

/** Writes bench/results/<name>-<timestamp>.json with the machine it ran on. */
export async function writeResult (name: string, data: Record<string, unknown>): Promise<string> {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results')
  await mkdir(dir, { recursive: true })
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version }
  await writeFile(file, JSON.stringify({ name, at: new Date().toISOString(), machine, ...data }, null, 2) + '\n')
  process.stdout.write(`\nwrote ${file}\n`)
  return file
}
