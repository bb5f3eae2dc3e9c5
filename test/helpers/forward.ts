/**
 * The forwarding core of the test proxies (round-robin.ts, cut-proxy.ts): one request to one
 * backend, streamed both ways (SSE responses included), 502 when the backend cannot be reached.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'

export function forward(req: IncomingMessage, res: ServerResponse, target: URL): void {
  const upstream = httpRequest(
    {
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, host: target.host },
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
      // The client went away (or was cut off): the backend's response is closed too.
      res.once('close', () => answer.destroy())
    },
  )
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
    res.end('bad gateway')
  })
  req.pipe(upstream)
}
