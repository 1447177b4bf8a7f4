/** Resident memory and CPU time of a process, from /proc (Linux); 0 when it is gone or unreadable. */
import { readFile } from 'node:fs/promises'

async function statusMB (pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  try {
    return Math.round(
      Number(
        new RegExp(`${field}:\\s+(\\d+)`).exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0
      ) / 1024
    )
  } catch {
    return 0
  }
}

export async function rssMB (pid: number): Promise<number> {
  return await statusMB(pid, 'VmRSS')
}

/** The highest RSS the process reached so far. */
export async function peakRssMB (pid: number): Promise<number> {
  return await statusMB(pid, 'VmHWM')
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
