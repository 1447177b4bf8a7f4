/**
 * The README, run as a user would: in a fresh folder (this checkout's package, a new ./data), the
 * CSS started with `npm start`, then every `sh` block as one pasted script (it must succeed; the
 * Two-commands block is this test itself and `npm test` is not run inside it), and every `console`
 * block command by command, its output compared with what the README shows (`...` stands for
 * anything; runs of spaces compare equal). The ports are replaced by free ones (8080, 1883, 8081)
 * and the simulator's `--duration 60` by 1. Every `syncctl ...` the prose names must be a real
 * command with real options.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, readFile, symlink } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Command } from 'commander'
import { createProgram } from '../../src/admin/program.js'
import { freePort } from '../../harness/ports.js'
import { waitFor } from '../helpers/cluster.js'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const readme = await readFile(path.join(repo, 'README.md'), 'utf8')
const blocks = [...readme.matchAll(/```(sh|console)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1] ?? '', text: m[2] ?? '' }))

const dir = t.testdir()
for (const f of ['package.json', 'node_modules', 'dist', 'src', 'cmd', 'conf', 'scripts', 'harness', 'bench', 'ui', 'tsconfig.json', 'tsconfig.build.json']) {
  await symlink(path.join(repo, f), path.join(dir, f))
}
await mkdir(path.join(dir, 'data'))
const ports = { css: await freePort(), mqtt: await freePort(), ess: await freePort() }
const localize = (text: string): string => text
  .replaceAll(':8080', `:${ports.css}`).replaceAll(':1883', `:${ports.mqtt}`).replaceAll(':8081', `:${ports.ess}`)
  .replaceAll('--duration 60', '--duration 1')
const env: NodeJS.ProcessEnv = { ...process.env, LISTENING_PORT: String(ports.ess), SYNC_URL: `http://127.0.0.1:${ports.css}`, SYNC_CONF: '/nonexistent', LOG_LEVEL: 'warn' }
delete env.NODE_OPTIONS

/** Runs a script in its own process group (so what it starts in the background can be stopped). */
function bash (script: string, extra: Record<string, string> = {}): { child: ChildProcess, done: Promise<{ code: number, out: string, err: string }> } {
  const child = spawn('bash', ['-e', '-c', script], { cwd: dir, env: { ...env, ...extra }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  const done = new Promise<{ code: number, out: string, err: string }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code: code ?? -1, out, err: err + (signal === null ? '' : ` (signal ${signal})`) }) })
  })
  return { child, done }
}
const groups: ChildProcess[] = []
t.teardown(async () => {
  for (const g of groups.reverse()) {
    try { process.kill(-(g.pid ?? 0), 'SIGTERM') } catch {}
  }
  await new Promise((resolve) => setTimeout(resolve, 500))
})

t.test('the README as a user runs it', async (t) => {
  // The Two-commands block: `npm start` (npm ci is what set up this checkout).
  const twoCommands = blocks[0]
  t.match(twoCommands?.text, /npm ci && npm start/, 'the first block is the Two-commands block')
  const css = bash('npm start', { LISTENING_PORT: String(ports.css), MQTT_LISTENING_PORT: String(ports.mqtt) })
  groups.push(css.child)
  let cssExit: { code: number, out: string, err: string } | undefined
  void css.done.then((r) => { cssExit = r })
  await waitFor('npm start: the CSS ready', async () => {
    if (cssExit !== undefined) throw new Error(`npm start exited ${cssExit.code}: ${cssExit.err.slice(-2000)} ${cssExit.out.slice(-2000)}`)
    const r = await fetch(`http://127.0.0.1:${ports.css}/readyz`).catch(() => undefined)
    return r?.ok === true ? true : undefined
  }, 120_000)

  for (const [i, b] of blocks.entries()) {
    if (i === 0) continue
    if (b.lang === 'sh') {
      t.test(`README sh block ${i}: ${b.text.split('\n')[0] ?? ''}`, async (t) => {
        const run = bash(localize(b.text))
        groups.push(run.child)
        const r = await run.done
        t.equal(r.code, 0, `exit 0 (stderr: ${r.err.slice(-500)})`)
        if (b.text.includes('prints: hello')) t.match(r.out, /^hello$/m, 'the edge app read the data')
        if (b.text.includes('destinations')) t.match(r.out, /"status":"consumed"/, 'the CSS shows it consumed')
        if (b.text.includes('syncctl sim')) t.match(r.out, /Simulated fleet ready/)
      })
    } else {
      t.test(`README console block ${i}`, async (t) => {
        const steps: Array<{ cmd: string, expect: string[] }> = []
        for (const line of b.text.split('\n')) {
          if (line.startsWith('$ ')) steps.push({ cmd: line.slice(2), expect: [] })
          else if (line !== '') steps.at(-1)?.expect.push(line)
        }
        // One shell for the block (exports carry over), a marker before each command's output.
        const script = steps.map((s, k) => `echo "@@step ${k}"\n${localize(s.cmd)}`).join('\n')
        const r = await bash(script).done
        t.equal(r.code, 0, `exit 0 (stderr: ${r.err.slice(-500)})`)
        const outputs = r.out.split(/^@@step \d+\n/m).slice(1)
        const norm = (s: string): string => s.replace(/ +/g, ' ').trimEnd()
        steps.forEach((s, k) => {
          const got = (outputs[k] ?? '').split('\n').filter((l) => l !== '').map(norm)
          const want = s.expect.map(norm)
          const ok = got.length === want.length && want.every((w, j) => {
            const re = new RegExp('^' + w.split('...').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$')
            return re.test(got[j] ?? '')
          })
          t.ok(ok, `$ ${s.cmd}`, { got, want })
        })
      })
    }
  }
})

t.test('every syncctl command the prose names exists, with its options', async (t) => {
  const program = createProgram({ stdout: () => {}, stderr: () => {}, fetch, env: {} })
  // Placeholders (`syncctl <command> --help`) and bare options (`syncctl --help`) are not commands.
  const spans = [...readme.matchAll(/`(?:npx )?syncctl ([^`]+)`/g)].map((m) => m[1] ?? '')
    .filter((sp) => !sp.startsWith('--') && !sp.includes('<'))
  t.ok(spans.length >= 15, `${spans.length} syncctl commands named`)
  for (const span of spans) {
    const words = span.split(/\s+/)
    let cmd: Command = program
    let k = 0
    for (; k < words.length; k++) {
      const sub = cmd.commands.find((c) => c.name() === words[k])
      if (sub === undefined) break
      cmd = sub
    }
    const options = new Set([...cmd.options, ...program.options].map((o) => o.long))
    const unknown = words.slice(k).filter((w) => w.startsWith('--') && !options.has(w.split('=')[0]))
    t.ok(cmd !== program, `syncctl ${span}: a command`)
    t.same(unknown, [], `syncctl ${span}: its options exist`)
  }
})
