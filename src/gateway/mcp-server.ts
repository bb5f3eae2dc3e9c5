/**
 * The 2025-11-25 binding of the surface (`surface.ts`) on SDK 1.x: one low-level `Server` per
 * HTTP session and one for stdio. Low-level because the tool list is computed per request for
 * the calling principal and direct-mode tools carry upstream JSON Schemas as they are.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js'
import type { Config } from '../config/index.js'
import { elicitationApprover } from './approval.js'
import type { GatewayEngine } from './contracts.js'
import {
  SERVER_INSTRUCTIONS,
  SERVER_NAME,
  SERVER_VERSION,
  createSurface,
  progressNotifier,
  type RequestIdentity,
  type RequestScope,
} from './surface.js'

export { SERVER_NAME, SERVER_VERSION, directToolName } from './surface.js'
export type { RequestIdentity } from './surface.js'

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>

export interface McpServerOptions {
  engine: GatewayEngine
  config: Config
  identify: (extra: Extra) => RequestIdentity
  /** Reports engine bugs (a throw from `execute`); the client only sees `INTERNAL`. */
  onInternalError?: (err: unknown) => void
}

/** Builds one MCP server (one per HTTP session, one for stdio). */
export function createMcpServer(options: McpServerOptions): Server {
  const { config, identify } = options
  const surface = createSurface(options)
  // One server per HTTP session and per stdio connection: its id scopes the PII vault.
  const session = randomUUID()
  const server = new Server(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: { ...surface.capabilities, logging: {} },
      instructions: SERVER_INSTRUCTIONS,
    },
  )

  const scopeOf = (extra: Extra): RequestScope => {
    const progress = progressNotifier(extra._meta?.progressToken, (n) => extra.sendNotification(n))
    return {
      who: identify(extra),
      signal: extra.signal,
      session,
      ...(progress === undefined ? {} : { progress }),
      approve: elicitationApprover(server, {
        timeoutMs: config.gateway.approvalTimeoutMs,
        relatedRequestId: extra.requestId,
        signal: extra.signal,
      }),
    }
  }

  server.setRequestHandler(ListToolsRequestSchema, (_request, extra) => ({
    tools: surface.listTools(identify(extra).principal),
  }))
  server.setRequestHandler(CallToolRequestSchema, (request, extra) =>
    surface.callTool(request.params.name, request.params.arguments ?? {}, scopeOf(extra)),
  )

  const { prompts, resources } = surface
  if (prompts !== undefined) {
    server.setRequestHandler(ListPromptsRequestSchema, (_request, extra) =>
      prompts.list(identify(extra).principal),
    )
    server.setRequestHandler(GetPromptRequestSchema, (request, extra) =>
      prompts.get(request.params.name, request.params.arguments ?? {}, scopeOf(extra)),
    )
  }
  if (resources !== undefined) {
    server.setRequestHandler(ListResourcesRequestSchema, (_request, extra) =>
      resources.list(identify(extra).principal),
    )
    server.setRequestHandler(ListResourceTemplatesRequestSchema, (_request, extra) =>
      resources.listTemplates(identify(extra).principal),
    )
    server.setRequestHandler(ReadResourceRequestSchema, (request, extra) =>
      resources.read(request.params.uri, scopeOf(extra)),
    )
  }
  return server
}
