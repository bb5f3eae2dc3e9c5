/**
 * Starting the HTTP gateway on a host and port, and saying where it listens.
 *
 * @module
 */
import type { FastifyInstance } from 'fastify'
import { MCP_PATH } from './app.js'

export interface ListenOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  /** Where the URL line goes; default stderr (stdout may be a protocol or JSON channel). */
  print?: (line: string) => void
}

/** Listens and returns the MCP endpoint URL, e.g. `http://127.0.0.1:8787/mcp`. */
export async function listen(app: FastifyInstance, options: ListenOptions): Promise<string> {
  await app.listen({ host: options.host, port: options.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  const scheme = isTls(app) ? 'https' : 'http'
  const host = options.host.includes(':') ? `[${options.host}]` : options.host
  const url = `${scheme}://${host}:${port}${MCP_PATH}`
  const print = options.print ?? ((line: string) => process.stderr.write(`${line}\n`))
  print(`sluice gateway listening on ${url}`)
  return url
}

// An https.Server has setSecureContext; fastify's initialConfig does not keep the TLS options.
function isTls(app: FastifyInstance): boolean {
  return typeof (app.server as { setSecureContext?: unknown }).setSecureContext === 'function'
}
