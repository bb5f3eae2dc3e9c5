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
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'
import type { Config } from '../config/index.js'
import { extractTraceContext, setSafeAttributes, withSpan } from '../telemetry/index.js'
import type { CatalogTool, Principal } from '../types.js'
import { elicitationApprover } from './approval.js'
import { isSluiceError } from '../errors.js'
import type { ExecuteOptions, GatewayEngine, PassthroughEngine } from './contracts.js'
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

/**
 * A JSON-RPC error answer. Not the SDK's `McpError`: that one prefixes its message with
 * "MCP error <code>:", and the client's `McpError` adds the prefix again.
 */
class ProtocolError extends Error {
  readonly code: number
  readonly data: unknown
  constructor(code: number, message: string, data?: unknown) {
    super(message)
    this.code = code
    this.data = data
  }
}

/** The engine's prompt and resource pass-through, when it has one (a test engine may not). */
function passthroughOf(engine: GatewayEngine): PassthroughEngine | undefined {
  const { listPrompts, getPrompt, listResources, listResourceTemplates, readResource } = engine
  if (!listPrompts || !getPrompt || !listResources || !listResourceTemplates || !readResource)
    return undefined
  return {
    listPrompts: listPrompts.bind(engine),
    getPrompt: getPrompt.bind(engine),
    listResources: listResources.bind(engine),
    listResourceTemplates: listResourceTemplates.bind(engine),
    readResource: readResource.bind(engine),
  }
}

/**
 * A pass-through failure as a JSON-RPC error: unknown, denied and not approved are
 * `-32602` (invalid params, what the spec names for an unknown prompt or resource) with the
 * sluice code in `data.code`; an upstream's own JSON-RPC code (e.g. -32002 resource not found)
 * is kept; anything else is `-32603`.
 */
async function protocolErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (!isSluiceError(err)) throw err
    const upstreamCode = err.details?.['jsonRpcCode']
    const code =
      err.code === 'UNKNOWN_TOOL' || err.code === 'TOOL_DENIED' || err.code === 'APPROVAL_DENIED'
        ? ErrorCode.InvalidParams
        : typeof upstreamCode === 'number'
          ? upstreamCode
          : ErrorCode.InternalError
    throw new ProtocolError(code, err.message, { code: err.code })
  }
}

/** Builds one MCP server (one per HTTP session, one for stdio). */
export function createMcpServer(options: McpServerOptions): Server {
  const { engine, config, identify } = options
  const passthrough = passthroughOf(engine)
  const server = new Server(
    { name: SERVER_NAME, version: SERVER_VERSION },
    {
      capabilities: {
        tools: {},
        logging: {},
        ...(passthrough === undefined ? {} : { prompts: {}, resources: {} }),
      },
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
    // A protocol error, as the spec says for an unknown tool (tools, "Error Handling"): a client
    // that asked for a tool sluice does not serve has a bug, not a failed tool run.
    throw new ProtocolError(
      ErrorCode.InvalidParams,
      `Unknown tool "${name.slice(0, 128)}". Available: ${EXECUTE_CODE}, ${SEARCH_TOOLS}.`,
    )
  }

  if (passthrough !== undefined) {
    server.setRequestHandler(ListPromptsRequestSchema, async (_request, extra) => ({
      prompts: await passthrough.listPrompts(identify(extra).principal),
    }))
    server.setRequestHandler(GetPromptRequestSchema, (request, extra) => {
      const who = identify(extra)
      return protocolErrors(() =>
        passthrough.getPrompt(
          who.principal,
          request.params.name,
          request.params.arguments ?? {},
          requestOptions(extra, who),
        ),
      )
    })
    server.setRequestHandler(ListResourcesRequestSchema, async (_request, extra) => ({
      resources: await passthrough.listResources(identify(extra).principal),
    }))
    server.setRequestHandler(ListResourceTemplatesRequestSchema, async (_request, extra) => ({
      resourceTemplates: await passthrough.listResourceTemplates(identify(extra).principal),
    }))
    server.setRequestHandler(ReadResourceRequestSchema, (request, extra) => {
      const who = identify(extra)
      return protocolErrors(() =>
        passthrough.readResource(who.principal, request.params.uri, requestOptions(extra, who)),
      )
    })
  }

  return server
}
