/**
 * The MCP server sluice shows its clients: `execute_code`, `search_tools` and, in direct mode,
 * the allowed upstream tools one by one. Built on the SDK's low-level `Server` because the tool
 * list is computed per request for the calling principal (descriptions carry that principal's
 * declarations) and direct-mode tools carry upstream JSON Schemas as they are.
 *
 * @module
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import {
  CallToolRequestSchema,
  ListToolsRequestSchema,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'
import type { Config } from '../config/index.js'
import { extractTraceContext, setSafeAttributes, withSpan } from '../telemetry/index.js'
import type { CatalogTool, Principal } from '../types.js'
import { elicitationApprover } from './approval.js'
import type { ExecuteOptions, GatewayEngine } from './contracts.js'
import {
  DEFAULT_SEARCH_LIMIT,
  EXECUTE_CODE,
  MAX_SEARCH_LIMIT,
  SEARCH_TOOLS,
  SEARCH_TOOLS_DESCRIPTION,
  executeCodeInputSchema,
  executeCodeOutputSchema,
  failedExecution,
  searchToolsInputSchema,
  searchToolsOutputSchema,
  toCallToolResult,
  toSearchResult,
  toolError,
  type OuterToolResult,
} from './render.js'

export const SERVER_NAME = 'sluice'
export const SERVER_VERSION = '0.1.0'

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>

/** Who is calling, resolved per request (HTTP: from the verified token; stdio: from config). */
export interface RequestIdentity {
  principal: Principal
  /** The raw bearer token, for token exchange; absent for local and mTLS principals. */
  token?: string
  traceContext?: unknown
}

export interface McpServerOptions {
  engine: GatewayEngine
  config: Config
  identify: (extra: Extra) => RequestIdentity
  /** Reports engine bugs (a throw from `execute`); the client only sees `INTERNAL`. */
  onInternalError?: (err: unknown) => void
}

/** MCP tool names (spec 2025-11-25): 1 to 128 of `A-Z a-z 0-9 _ - .`. */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/

/**
 * The direct-mode name of an upstream tool: `<server>__<tool>`. Dots are valid MCP names, but
 * several model APIs accept only `[A-Za-z0-9_-]{1,64}` in tool names, so `__` travels further.
 */
export function directToolName(tool: CatalogTool): string {
  const name = `${tool.server}__${tool.name}`
  return TOOL_NAME.test(name) ? name : `${tool.server}__${tool.ident}`
}

/** Maps direct-mode names to catalog tools; the first of two colliding names wins. */
function directTools(tools: CatalogTool[]): Map<string, CatalogTool> {
  const byName = new Map<string, CatalogTool>()
  for (const tool of tools) {
    const name = directToolName(tool)
    if (!TOOL_NAME.test(name) || name === EXECUTE_CODE || name === SEARCH_TOOLS || byName.has(name))
      continue
    byName.set(name, tool)
  }
  return byName
}

function progressReporter(extra: Extra): ((message: string) => void) | undefined {
  const token = extra._meta?.progressToken
  if (token === undefined) return undefined
  let progress = 0
  return (message) => {
    progress += 1
    extra
      .sendNotification({
        method: 'notifications/progress',
        params: { progressToken: token, progress, message },
      })
      .catch(() => {
        // The stream may be gone (client disconnected); progress is best effort.
      })
  }
}

/** Builds one MCP server (one per HTTP session, one for stdio). */
export function createMcpServer(options: McpServerOptions): Server {
  const { engine, config, identify } = options
  const server = new Server(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: { tools: {}, logging: {} },
      instructions:
        'Write TypeScript for execute_code; call tools as `await tools.<server>.<tool>(args)`. Use search_tools to find tools and their declarations.',
    },
  )

  const requestOptions = (extra: Extra, who: RequestIdentity): ExecuteOptions => {
    const onProgress = progressReporter(extra)
    return {
      signal: extra.signal,
      ...(who.token === undefined ? {} : { inboundToken: who.token }),
      ...(who.traceContext === undefined ? {} : { traceContext: who.traceContext }),
      ...(onProgress === undefined ? {} : { onProgress }),
      approve: elicitationApprover(server, {
        timeoutMs: config.gateway.approvalTimeoutMs,
        relatedRequestId: extra.requestId,
        signal: extra.signal,
      }),
    }
  }

  server.setRequestHandler(ListToolsRequestSchema, (_request, extra) => {
    const { principal } = identify(extra)
    const tools: Tool[] = [
      {
        name: EXECUTE_CODE,
        title: 'Run TypeScript against the tools',
        description: engine.describeExecuteCode(principal),
        inputSchema: executeCodeInputSchema as unknown as Tool['inputSchema'],
        outputSchema: executeCodeOutputSchema as unknown as Tool['outputSchema'],
      },
      {
        name: SEARCH_TOOLS,
        title: 'Search the tools',
        description: SEARCH_TOOLS_DESCRIPTION,
        inputSchema: searchToolsInputSchema as unknown as Tool['inputSchema'],
        outputSchema: searchToolsOutputSchema as unknown as Tool['outputSchema'],
        annotations: { readOnlyHint: true, openWorldHint: false },
      },
    ]
    if (config.gateway.directMode) {
      for (const [name, tool] of directTools(engine.listTools(principal))) {
        const d = tool.definition
        tools.push({
          name,
          ...(d.title === undefined ? {} : { title: d.title }),
          description: d.description ?? `${tool.server}.${tool.name}`,
          inputSchema: d.inputSchema as Tool['inputSchema'],
          ...(d.outputSchema === undefined
            ? {}
            : { outputSchema: d.outputSchema as Tool['outputSchema'] }),
          ...(d.annotations === undefined ? {} : { annotations: d.annotations }),
        })
      }
    }
    return { tools }
  })

  server.setRequestHandler(CallToolRequestSchema, (request, extra): Promise<OuterToolResult> => {
    const who = identify(extra)
    // One server span per MCP request; the engine's execute_code span and its inner calls nest
    // under it. A caller's traceparent is honoured, its baggage and tracestate are not.
    const parent =
      who.traceContext !== undefined &&
      who.traceContext !== null &&
      typeof who.traceContext === 'object'
        ? extractTraceContext(who.traceContext as Record<string, unknown>)
        : undefined
    return withSpan(
      `tools/call ${request.params.name.slice(0, 64)}`,
      {
        kind: 'server',
        ...(parent ? { parent } : {}),
        attributes: {
          'mcp.method.name': 'tools/call',
          'gen_ai.tool.name': request.params.name.slice(0, 128),
        },
      },
      async (span) => {
        const result = await handleCall(
          request.params.name,
          request.params.arguments ?? {},
          extra,
          who,
        )
        if (result.isError) {
          const code = (result.structuredContent as { error?: { code?: unknown } } | undefined)
            ?.error?.code
          setSafeAttributes(span, { 'error.type': typeof code === 'string' ? code : 'TOOL_ERROR' })
        }
        return result
      },
    )
  })

  const handleCall = async (
    name: string,
    args: Record<string, unknown>,
    extra: Extra,
    who: RequestIdentity,
  ): Promise<OuterToolResult> => {
    if (name === EXECUTE_CODE) {
      const code = args['code']
      if (typeof code !== 'string') {
        return failedExecution('INVALID_ARGS', 'execute_code needs `code`, a string of TypeScript')
      }
      try {
        return toCallToolResult(
          await engine.execute(who.principal, code, requestOptions(extra, who)),
        )
      } catch (err) {
        options.onInternalError?.(err)
        return failedExecution(
          'INTERNAL',
          'internal error in the gateway; the execution did not complete',
        )
      }
    }

    if (name === SEARCH_TOOLS) {
      const query = args['query']
      const limit = args['limit'] ?? DEFAULT_SEARCH_LIMIT
      if (typeof query !== 'string') return toolError('search_tools needs `query`, a string')
      if (
        typeof limit !== 'number' ||
        !Number.isInteger(limit) ||
        limit < 1 ||
        limit > MAX_SEARCH_LIMIT
      ) {
        return toolError(`search_tools: \`limit\` must be an integer from 1 to ${MAX_SEARCH_LIMIT}`)
      }
      return toSearchResult(engine.searchTools(who.principal, query, limit))
    }

    if (config.gateway.directMode) {
      const tool = directTools(engine.listTools(who.principal)).get(name)
      if (tool !== undefined) {
        try {
          const result = await engine.callDirect(
            who.principal,
            tool,
            args,
            requestOptions(extra, who),
          )
          return result as OuterToolResult
        } catch (err) {
          options.onInternalError?.(err)
          return toolError('internal error in the gateway; the call did not complete')
        }
      }
    }
    // As an isError result, not a JSON-RPC error: SDK 1.x servers (and their clients) treat an
    // unknown tool this way, and the model can read and correct it.
    return toolError(
      `Unknown tool "${name.slice(0, 128)}". Available: ${EXECUTE_CODE}, ${SEARCH_TOOLS}.`,
    )
  }

  return server
}
