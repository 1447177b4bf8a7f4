/**
 * A free TCP port, for servers that cannot bind port 0 and report back (it may be taken again
 * before use: retry on EADDRINUSE).
 */
import net from 'node:net'
import { SyncError, SyncErrorCode } from './errors.js'

export async function freePort (host = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      srv.close(() => {
        typeof addr === 'object' && addr !== null
          ? resolve(addr.port)
          : reject(new SyncError(SyncErrorCode.INTERNAL, 'No free port'))
      })
    })
  })
}
