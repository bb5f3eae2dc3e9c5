/**
 * The same MCP server over stdio, for one local user: the principal comes from the config
 * (`identity.local`, default `local-user`), never from the client.
 *
 * @module
 */
import type { Readable, Writable } from 'node:stream'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import { localPrincipal } from '../auth/index.js'
import type { Config } from '../config/index.js'
import type { GatewayEngine } from './contracts.js'
import { createMcpServer } from './mcp-server.js'

export interface StdioDeps {
  config: Config
  engine: GatewayEngine
  /** Default `process.stdin`. */
  stdin?: Readable
  /** Default `process.stdout`; nothing else may write to it. */
  stdout?: Writable
  /** Engine bugs are reported here (stdout is the protocol channel). Default: stderr. */
  onInternalError?: (err: unknown) => void
}

export interface StdioGateway {
  /** Closes the transport; the engine stays open (its owner closes it). */
  close(): Promise<void>
  /** Resolves when the client closes stdin or `close()` was called. */
  readonly closed: Promise<void>
}

/** Serves MCP over stdio until the client goes away. */
export async function startStdio(deps: StdioDeps): Promise<StdioGateway> {
  const principal = localPrincipal(deps.config.identity?.local)
  const server = createMcpServer({
    engine: deps.engine,
    config: deps.config,
    identify: () => ({ principal }),
    onInternalError:
      deps.onInternalError ??
      ((err) =>
        process.stderr.write(
          `sluice: engine failed: ${err instanceof Error ? err.message : String(err)}\n`,
        )),
  })
  const transport = new StdioServerTransport(deps.stdin, deps.stdout)
  const closed = new Promise<void>((resolve) => {
    server.onclose = () => resolve()
  })
  // The transport does not notice the end of stdin on its own.
  const stdin = deps.stdin ?? process.stdin
  const onEnd = (): void => void server.close()
  stdin.once('end', onEnd)
  await server.connect(transport)
  return {
    closed,
    async close() {
      stdin.off('end', onEnd)
      await server.close()
    },
  }
}
