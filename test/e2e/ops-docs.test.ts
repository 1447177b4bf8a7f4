/**
 * The shipped Prometheus rules and Grafana dashboard use only series the services export:
 * promtool checks the rules, and every `edgesync_*` name in either file is in the /metrics answer
 * of a running CSS or ESS (with the EMS plugin).
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { requireBinary } from '../helpers/binaries.js'
import { startCss, startEss } from '../helpers/cluster.js'

const docs = path.join(import.meta.dirname, '..', '..', 'docs')
const rules = await readFile(path.join(docs, 'prometheus-rules.yml'), 'utf8')
const dashboard = await readFile(path.join(docs, 'grafana-dashboard.json'), 'utf8')

t.test('ops docs - promtool accepts the alerting rules', async (t) => {
  const promtool = requireBinary(t, 'promtool', 'apt-get install prometheus')
  if (promtool === undefined) return
  const { stdout } = await promisify(execFile)(promtool, ['check', 'rules', path.join(docs, 'prometheus-rules.yml')])
  t.match(stdout, /SUCCESS: \d+ rules found/)
})

t.test('ops docs - every series the rules and the dashboard use is exported', async (t) => {
  const root = t.testdir()
  const css = await startCss(t, path.join(root, 'css'))
  const ess = await startEss(t, css, path.join(root, 'ess'), { org: 'org1', type: 'edge', id: 'n1' }, undefined, { Plugins: 'ems' })
  const exported = new Set<string>()
  for (const url of [css.restUrl, ess.restUrl]) {
    const text = await (await fetch(`${url}/metrics`)).text()
    for (const m of text.matchAll(/^# TYPE (\S+) /gm)) exported.add(m[1] ?? '')
  }
  const base = (n: string): string => n.replace(/_(bucket|count|sum)$/, '')
  const used = [...new Set([...`${rules}\n${dashboard}`.matchAll(/edgesync_[a-z_]+/g)].map((m) => base(m[0])))]
  t.ok(used.length >= 15, `${used.length} series used`)
  t.same(used.filter((n) => !exported.has(n)), [], 'no series the services do not export')
  JSON.parse(dashboard)
})
