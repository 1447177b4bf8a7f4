/** Resident memory and CPU time of a process, from /proc (Linux); 0 when it is gone or unreadable. */
import { readFile } from 'node:fs/promises'

async function statusMB (pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): Promise<number> {
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

/**
 * The process's own memory: anonymous pages (heap, stacks, buffers). The rest of RSS is file pages,
 * mostly the node binary's code, shared by every Node process on the host.
 */
export async function privateMB (pid: number): Promise<number> {
  return await statusMB(pid, 'RssAnon')
}

/** Proportional set size: private pages plus an equal share of pages shared with other processes. */
export async function pssMB (pid: number): Promise<number> {
  try {
    const kb = /^Pss:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1]
    return Math.round(Number(kb ?? 0) / 1024)
  } catch {
    return 0
  }
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
