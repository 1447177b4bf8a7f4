/** `syncctl certs`: a CA, server certificates and node client certificates, written as PEM files. */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Command } from 'commander'
// Straight from certs.js: node-forge is loaded only by those who make certificates.
import { createCa, createClientCert, createServerCert, type PemPair } from '../security/certs.js'
import { CliError, EXIT, type Io } from './client.js'

async function writePair (
  dir: string,
  name: string,
  pair: PemPair,
  force: boolean
): Promise<{ cert: string; key: string }> {
  await mkdir(dir, { recursive: true })
  const cert = path.resolve(dir, `${name}.pem`)
  const key = path.resolve(dir, `${name}-key.pem`)
  // 'wx' refuses to replace a key someone may already rely on, unless --force.
  const flag = force ? 'w' : 'wx'
  try {
    await writeFile(key, pair.key, { mode: 0o600, flag })
    await writeFile(cert, pair.cert, { mode: 0o644, flag })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CliError(`${name} files already exist in ${dir} (use --force to replace them)`, EXIT.REJECTED)
    }
    throw err
  }
  return { cert, key }
}

async function readCa (dir: string): Promise<PemPair> {
  try {
    return {
      cert: await readFile(path.join(dir, 'ca.pem'), 'utf8'),
      key: await readFile(path.join(dir, 'ca-key.pem'), 'utf8')
    }
  } catch (err) {
    const fix = `create them with: syncctl certs ca --dir ${dir}`
    throw new CliError(
      `Cannot read the CA from ${dir} (ca.pem and ca-key.pem; ${fix}): ${(err as Error).message}`,
      EXIT.USAGE
    )
  }
}

interface CertOpts {
  dir: string
  days?: string
  force?: boolean
}

function days (o: CertOpts): { days?: number } {
  if (o.days === undefined) return {}
  const n = Number(o.days)
  if (!Number.isInteger(n) || n < 1) {
    throw new CliError(`--days must be a positive whole number, not ${o.days}`, EXIT.USAGE)
  }
  return { days: n }
}

export function addCertsCommand (program: Command, io: Io): void {
  const certs = program
    .command('certs')
    .description('TLS certificates for the REST API, the broker and nodes (files in --dir)')
  const common = (c: Command): Command =>
    c
      .option('--dir <dir>', 'folder of the CA and the generated files', 'certs')
      .option('--days <n>', 'validity in days')
      .option('--force', 'replace existing files')
  common(
    certs
      .command('ca')
      .description('create a CA (ca.pem, ca-key.pem) that signs server and node certificates')
  )
    .option('--cn <name>', 'common name of the CA', 'edgesync CA')
    .action(async (o: CertOpts & { cn: string }) => {
      const files = await writePair(o.dir, 'ca', createCa(o.cn, days(o)), o.force === true)
      io.result?.(files)
      io.stdout(
        `CA written: ${files.cert} (keep ${files.key} secret)\nCSS: CaCertificate ${files.cert}   ESS: CaCertificate <copy of ca.pem>\n`
      )
    })
  common(
    certs
      .command('server <hosts...>')
      .description(
        'create a server certificate (server.pem, server-key.pem) for the CSS or ESS, valid for the given DNS names and IP addresses'
      )
  ).action(async (hosts: string[], o: CertOpts) => {
    const files = await writePair(
      o.dir,
      'server',
      createServerCert(await readCa(o.dir), hosts, days(o)),
      o.force === true
    )
    io.result?.(files)
    io.stdout(`ServerCertificate ${files.cert}\nServerKey ${files.key}\n`)
  })
  common(
    certs
      .command('client <org> <destType> <destId>')
      .description(
        'create a node client certificate (node-<org>-<type>-<id>.pem) whose name is the node identity org/type/id'
      )
  ).action(async (org: string, t: string, id: string, o: CertOpts) => {
    const files = await writePair(
      o.dir,
      `node-${org}-${t}-${id}`,
      createClientCert(await readCa(o.dir), `${org}/${t}/${id}`, days(o)),
      o.force === true
    )
    io.result?.({ ...files, ca: path.resolve(o.dir, 'ca.pem') })
    io.stdout(
      `CaCertificate ${path.resolve(o.dir, 'ca.pem')}\nClientCertificate ${files.cert}\nClientKey ${files.key}\n`
    )
  })
}
