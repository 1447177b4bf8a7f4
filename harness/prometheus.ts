/** A real Prometheus on a free loopback port, scraping the given targets every second (its data in a temp folder). */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { freePort, waitForPort } from './ports.js'

export interface Prometheus {
  url: string
  /** One instant query; the result vector's samples as label sets with their value. */
  query: (promql: string) => Promise<Array<{ metric: Record<string, string>; value: number }>>
  stop: () => Promise<void>
}

export interface ScrapeTarget {
  job: string
  /** host:port */
  target: string
}

export async function startPrometheus (bin: string, targets: ScrapeTarget[]): Promise<Prometheus> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edgesync-prom-'))
  const port = await freePort()
  const jobs = targets.map((t) =>
    [`  - job_name: '${t.job}'`, '    scrape_interval: 1s', '    static_configs:', `      - targets: ['${t.target}']`].join('\n')
  )
  await writeFile(path.join(dir, 'prometheus.yml'), ['global:', '  scrape_interval: 1s', 'scrape_configs:', ...jobs, ''].join('\n'))
  const child = spawn(
    bin,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] }
  )
  let err = ''
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000)
  })
  try {
    await waitForPort(port, 30_000)
  } catch (e) {
    child.kill('SIGKILL')
    throw new Error(`Prometheus did not start: ${err}`, { cause: e })
  }
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    query: async (promql) => {
      const r = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)
      const body = (await r.json()) as {
        status: string
        error?: string
        data?: { result: Array<{ metric: Record<string, string>; value: [number, string] }> }
      }
      if (body.status !== 'success') throw new Error(`PromQL ${promql}: ${body.error ?? r.status}`)
      return (body.data?.result ?? []).map((s) => ({ metric: s.metric, value: Number(s.value[1]) }))
    },
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await gone
      }
      await rm(dir, { recursive: true, force: true })
    }
  }
}
