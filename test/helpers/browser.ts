/**
 * Debian's chromium driven by playwright-core (no browser download): the one door to playwright
 * for the tests. Screenshots go to .tap/screenshots, and to docs/screenshots with SCREENSHOTS=docs
 * (how the README's pictures are refreshed).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { requireBinary } from './binaries.js'

export type { Browser, BrowserContext, Page } from 'playwright-core'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** The dashboard's assets are built by `npm run build` (CI does); on a laptop build them once here. */
function ensureUiBuilt (): void {
  if (existsSync(path.join(ROOT, 'dist', 'ui', 'css-main.js'))) return
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-ui.mjs')], { stdio: 'inherit' })
  if (r.status !== 0) throw new Error('Building the dashboard failed')
}

export async function launchBrowser (t: Test): Promise<Browser | undefined> {
  const exe = requireBinary(t, 'chromium', 'apt install chromium')
  if (exe === undefined) return undefined
  ensureUiBuilt()
  // Without the background-networking flags chromium tries Google's hosts at every start.
  const browser = await chromium.launch({
    executablePath: exe,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage']
  })
  t.teardown(async () => { await browser.close() })
  return browser
}

/** Page errors and failed requests are test failures, not noise. */
export function watchPage (t: Test, page: Page, allow: RegExp[] = []): void {
  page.on('pageerror', (e) => { t.fail(`page error: ${e.message}`) })
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    const text = m.text()
    // A 4xx the view asked for on purpose is logged by the browser as a failed resource.
    if (/Failed to load resource/.test(text) || allow.some((a) => a.test(text))) return
    t.fail(`console error: ${text}`)
  })
}

export async function screenshot (page: Page, name: string): Promise<void> {
  const dirs = [path.join(ROOT, '.tap', 'screenshots')]
  if (process.env.SCREENSHOTS === 'docs') dirs.push(path.join(ROOT, 'docs', 'screenshots'))
  for (const d of dirs) {
    mkdirSync(d, { recursive: true })
    await page.screenshot({ path: path.join(d, `${name}.png`), fullPage: false })
  }
}
