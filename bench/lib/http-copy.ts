/**
 * The plain-HTTP limit for the large-object bench (#22): `serve <file>` serves one file over HTTP
 * (prints `ready <port>`); `fetch <url> <out>` downloads it to `out`, hashing as it writes, and
 * fsyncs before it prints `done <bytes> <sha256>`. An ESS does at least this much per object: it
 * writes, fsyncs and hashes what it receives.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import http from 'node:http'

const [mode, a, b] = process.argv.slice(2)

if (mode === 'serve' && a !== undefined) {
  const size = (await stat(a)).size
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' })
    createReadStream(a).pipe(res)
  })
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address()
    process.stdout.write(`ready ${typeof addr === 'object' && addr !== null ? addr.port : 0}\n`)
  })
} else if (mode === 'fetch' && a !== undefined && b !== undefined) {
  const res = await fetch(a)
  if (res.body === null) throw new Error(`no body: ${res.status}`)
  const fh = await open(b, 'w', 0o600)
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of res.body) {
    hash.update(chunk)
    await fh.write(chunk)
    bytes += chunk.byteLength
  }
  await fh.sync()
  await fh.close()
  process.stdout.write(`done ${bytes} ${hash.digest('hex')}\n`)
} else {
  process.stderr.write('usage: http-copy serve <file> | fetch <url> <out>\n')
  process.exit(2)
}
