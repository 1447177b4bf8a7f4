/** Resident memory and CPU time of a process, from /proc (Linux); 0 when it is gone or unreadable. */
import { readFile } from 'node:fs/promises'

export async function rssMB (pid: number): Promise<number> {
  try {
    return Math.round(Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024)
  } catch {
    return 0
  }
}

/** User + system CPU seconds used so far. */
export async function cpuSeconds (pid: number): Promise<number> {
  try {
    const f = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? []
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return 0
  }
}
