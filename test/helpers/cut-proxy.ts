/**
 * An HTTP proxy on 127.0.0.1 in front of one backend that can drop every connection it holds at
 * once, the way a flaky network or a restarting load balancer does: `cut()` destroys the
 * client's sockets mid-response (SSE streams included), and the backend sees its responses
 * closed. New requests after a cut go through as before. It records each request's method and
 * `Last-Event-ID`, so a test can see a client resume.
 */
import { createServer, type IncomingMessage } from 'node:http'
import { forward } from './forward.js'
import type { AddressInfo, Socket } from 'node:net'

export interface CutProxy {
  /** `http://127.0.0.1:<port>` plus the backend URL's path. */
  readonly url: string
  /** Every request forwarded, in order. */
  readonly requests: Array<{ method: string; lastEventId?: string }>
  /** Destroys every open connection now, mid-response or not. */
  cut(): void
  close(): Promise<void>
}

export async function startCutProxy(backend: string): Promise<CutProxy> {
  const target = new URL(backend)
  const requests: CutProxy['requests'] = []
  const sockets = new Set<Socket>()
  const server = createServer((req: IncomingMessage, res) => {
    const lastEventId = req.headers['last-event-id']
    requests.push({
      method: req.method ?? '',
      ...(typeof lastEventId === 'string' ? { lastEventId } : {}),
    })
    forward(req, res, target)
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}${target.pathname}`,
    requests,
    cut() {
      for (const socket of sockets) socket.destroy()
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
