/**
 * The same MCP server over stdio, for one local user: the principal comes from the config
 * (`identity.local`, default `local-user`), never from the client. Both eras: the SDK 2.x
 * `serveStdio` reads the connection's opening message and pins one instance for its lifetime,
 * a 2026-07-28 one (SDK 2.x, `modern.ts`) for a request that claims that revision in `_meta`,
 * else the 2025-11-25 one (SDK 1.x, `mcp-server.ts`) that answers `initialize`.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'
import type { Server as ModernServer } from '@modelcontextprotocol/server'
import { serveStdio, StdioServerTransport } from '@modelcontextprotocol/server/stdio'
import { localPrincipal } from '../auth/index.js'
import type { Config } from '../config/index.js'
import type { GatewayEngine } from './contracts.js'
import { createMcpServer } from './mcp-server.js'
import { modernServerFactory } from './modern.js'

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
  const onInternalError =
    deps.onInternalError ??
    ((err: unknown) =>
      process.stderr.write(
        `sluice: engine failed: ${err instanceof Error ? err.message : String(err)}\n`,
      ))
  let resolveClosed!: () => void
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve
  })
  const transport = new StdioServerTransport(deps.stdin, deps.stdout)
  const handle = serveStdio(
    ({ era }) => {
      if (era === 'modern') {
        // One instance per connection: its session scopes the PII vault, as a 2025 session does.
        return modernServerFactory({
          engine: deps.engine,
          config: deps.config,
          whoOf: () => ({ principal }),
          session: randomUUID(),
          onError: onInternalError,
        })()
      }
      const legacy = createMcpServer({
        engine: deps.engine,
        config: deps.config,
        identify: () => ({ principal }),
        onInternalError,
      })
      // serveStdio types its factory for SDK 2.x; an SDK 1.x server has the same connect/close
      // over the same transport shape, which is all serveStdio calls on a 2025-era instance.
      return legacy as unknown as ModernServer
    },
    { legacy: 'serve', transport, onerror: (err) => onInternalError(err) },
  )
  // After serveStdio, which sets its own: the transport closes itself when stdin ends.
  const onclose = transport.onclose
  transport.onclose = () => {
    onclose?.()
    resolveClosed()
  }
  return {
    closed,
    async close() {
      await handle.close()
      resolveClosed()
    },
  }
}
