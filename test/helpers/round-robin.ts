/**
 * A plain round-robin HTTP proxy on 127.0.0.1, the way a load balancer without sticky sessions
 * routes: request n goes to backend n mod k, whatever its headers say. It streams both ways (SSE
 * responses included) and counts what each backend served.
 */
import { createServer, type IncomingMessage } from 'node:http'
import { forward } from './forward.js'
import type { AddressInfo } from 'node:net'

export interface RoundRobin {
  /** `http://127.0.0.1:<port>` plus the path of the first backend's URL. */
  readonly url: string
  /** Requests forwarded to each backend, in backend order. */
  readonly served: number[]
  /** Replaces the backends (e.g. after one was killed). */
  setBackends(urls: string[]): void
  close(): Promise<void>
}

export async function startRoundRobin(backends: string[]): Promise<RoundRobin> {
  let targets = backends.map((u) => new URL(u))
  const served = backends.map(() => 0)
  let next = 0
  const server = createServer((req: IncomingMessage, res) => {
    const index = next++ % targets.length
    const target = targets[index]!
    served[index] = (served[index] ?? 0) + 1
    forward(req, res, target)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}${targets[0]!.pathname}`,
    served,
    setBackends(urls) {
      targets = urls.map((u) => new URL(u))
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
