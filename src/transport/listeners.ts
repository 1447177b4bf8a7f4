/**
 * The embedded broker's listeners: plain TCP, TLS (mqtts) and WebSocket (ws, or wss with a
 * certificate). The only `ws` import. Each listener hands the connection's stream to Aedes.
 */
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import tls from 'node:tls'
import type { Duplex } from 'node:stream'
import type * as Ws from 'ws'
import { TransportError } from '../common/errors.js'

/** ws loads with the first WebSocket listener: an ESS has none (start time and memory, #22). */
const loadWs = async (): Promise<typeof Ws> => await import('ws')

export interface TlsMaterial {
  cert: string
  key: string
  /** CA of client certificates: when set, clients are asked for a certificate (password login still works). */
  ca?: string
}

export type StreamHandler = (stream: Duplex, req?: http.IncomingMessage) => void

export interface Listener {
  url: string
  port: number
  close: () => Promise<void>
}

/**
 * Connections the kernel queues before we accept them. Node's default, 511, overflows when a fleet
 * reconnects at once (the refused SYNs retry after 1, 3, 7 s); the kernel caps this at somaxconn.
 * `npm run bench -- storm` 10,000: all resynced in 26.9 s with 511, 14.9 s with this.
 */
const LISTEN_BACKLOG = 8192

async function listen (server: net.Server, host: string, port: number, what: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(new TransportError(`Cannot listen on ${host}:${port} (${what})`, { cause: err }))
    )
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => resolve())
  })
  const addr = server.address()
  return typeof addr === 'object' && addr !== null ? addr.port : port
}

function closer (server: net.Server): () => Promise<void> {
  return async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

function tlsOptions (t: TlsMaterial): tls.TlsOptions {
  // rejectUnauthorized false: a client without a certificate may still log in with a password;
  // the broker's authenticate hook trusts a certificate only when `socket.authorized` is true.
  return {
    cert: t.cert,
    key: t.key,
    minVersion: 'TLSv1.2',
    ...(t.ca === undefined ? {} : { ca: t.ca, requestCert: true, rejectUnauthorized: false })
  }
}

export async function listenTcp (host: string, port: number, handle: StreamHandler): Promise<Listener> {
  const server = net.createServer((socket) => {
    handle(socket)
  })
  const bound = await listen(server, host, port, 'MQTT')
  return { url: `mqtt://${host}:${bound}`, port: bound, close: closer(server) }
}

export async function listenTls (
  host: string,
  port: number,
  material: TlsMaterial,
  handle: StreamHandler
): Promise<Listener> {
  const server = tls.createServer(tlsOptions(material), (socket) => {
    handle(socket)
  })
  // A failed handshake (plain-text client, wrong CA) only concerns that socket.
  server.on('tlsClientError', (_err, socket) => {
    socket.destroy()
  })
  const bound = await listen(server, host, port, 'MQTT over TLS')
  return { url: `mqtts://${host}:${bound}`, port: bound, close: closer(server) }
}

export async function listenWebSocket (
  host: string,
  port: number,
  material: TlsMaterial | undefined,
  handle: StreamHandler
): Promise<Listener> {
  const server = material === undefined ? http.createServer() : https.createServer(tlsOptions(material))
  const { WebSocketServer, createWebSocketStream } = await loadWs()
  const wss = new WebSocketServer({ server, path: '/mqtt' })
  wss.on('connection', (socket, req) => {
    const stream = createWebSocketStream(socket)
    stream.on('error', () => {
      socket.terminate()
    })
    handle(stream, req)
  })
  const bound = await listen(server, host, port, 'MQTT over WebSocket')
  return {
    url: `${material === undefined ? 'ws' : 'wss'}://${host}:${bound}/mqtt`,
    port: bound,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      await new Promise<void>((resolve) => wss.close(() => resolve()))
      await closer(server)()
    }
  }
}

export interface AcceptedSocket {
  send: (text: string) => void
  close: () => void
  onClose: (fn: () => void) => void
}

/**
 * Accepts WebSocket upgrades on an existing HTTP(S) server for paths `match` accepts; `authorize`
 * decides from the request (false: 401 and the socket is closed).
 */
export function acceptWebSockets (
  server: http.Server,
  match: (path: string) => boolean,
  authorize: (req: http.IncomingMessage) => Promise<boolean>,
  onSocket: (s: AcceptedSocket, req: http.IncomingMessage) => void
): () => Promise<void> {
  let wss: Ws.WebSocketServer | undefined
  let making: Promise<Ws.WebSocketServer> | undefined
  const wsServer = async (): Promise<Ws.WebSocketServer> =>
    await (making ??= loadWs().then((ws) => (wss = new ws.WebSocketServer({ noServer: true }))))
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '').split('?')[0] ?? ''
    if (!match(path)) return
    Promise.all([authorize(req), wsServer()]).then(
      ([ok, wss]) => {
        if (!ok) {
          socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n')
          return
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          onSocket(
            {
              send: (text) => {
                ws.send(text)
              },
              close: () => {
                ws.close()
              },
              onClose: (fn) => {
                ws.on('close', fn)
              }
            },
            req
          )
        })
      },
      () => {
        socket.destroy()
      }
    )
  })
  return async () => {
    if (wss === undefined) return
    const open = wss
    for (const c of open.clients) c.terminate()
    await new Promise<void>((resolve) => open.close(() => resolve()))
  }
}
