/**
 * What sluice answers over MCP, independent of protocol era and SDK: the tool list
 * (`execute_code`, `search_tools` and, in direct mode, the allowed upstream tools one by one),
 * tool calls, and the prompt and resource pass-through. The 2025-11-25 binding
 * (`mcp-server.ts`, SDK 1.x) and the 2026-07-28 binding (`modern.ts`, SDK 2.x) both register
 * these handlers, so the two eras cannot drift apart.
 *
 * @module
 */
import type { Context } from '@opentelemetry/api'
import type { Tool } from '@modelcontextprotocol/sdk/types.js'
import type { Config } from '../config/index.js'
import { isSluiceError } from '../errors.js'
import { extractTraceContext, setSafeAttributes, withSpan } from '../telemetry/index.js'
import type { CatalogTool, Principal, SuspendedExecution } from '../types.js'
import type {
  ApprovalHandler,
  ExecuteOptions,
  GatewayEngine,
  PassthroughEngine,
  TaskEngine,
} from './contracts.js'
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
import type { ProgressReporter } from './progress.js'
import { createTaskResult, type TaskAnswer } from './task-wire.js'

export { progressNotifier } from './progress.js'

export const SERVER_NAME = 'sluice'
export const SERVER_VERSION = '0.1.0'
export const SERVER_INSTRUCTIONS =
  'Write TypeScript for execute_code; call tools as `await tools.<server>.<tool>(args)`. Use search_tools to find tools and their declarations.'

/** JSON-RPC error codes the surface answers with (spec: JSON-RPC 2.0). */
export const INVALID_PARAMS = -32602
export const INTERNAL_ERROR = -32603

/** Who is calling, resolved per request (HTTP: from the verified token; stdio: from config). */
export interface RequestIdentity {
  principal: Principal
  /** The raw bearer token, for token exchange; absent for local and mTLS principals. */
  token?: string
  traceContext?: unknown
}

/**
 * The `AuthInfo` both SDKs hand their handlers (same shape in 1.x and 2.x): the identity the
 * gateway verified rides in `extra`, never re-derived from headers.
 */
export function authInfoOf(who: RequestIdentity): {
  token: string
  clientId: string
  scopes: string[]
  extra: Record<string, unknown>
} {
  return {
    token: who.token ?? '',
    clientId: who.principal.sub,
    scopes: [...who.principal.scopes],
    extra: { identity: who },
  }
}

/** The identity `authInfoOf` carried; a request without one reached the server unauthenticated. */
export function identityOf(
  authInfo: { extra?: Record<string, unknown> } | undefined,
): RequestIdentity {
  const who = authInfo?.extra?.['identity'] as RequestIdentity | undefined
  // Every HTTP request is authenticated before it reaches an SDK; no identity is a bug.
  if (who === undefined) throw new Error('request reached the MCP server without an identity')
  return who
}

/** One request as the surface sees it, whichever SDK and era carried it. */
export interface RequestScope {
  who: RequestIdentity
  signal: AbortSignal
  /** Set when the client asked for progress (`_meta.progressToken`); see progress.ts. */
  progress?: ProgressReporter
  approve?: ApprovalHandler
  /**
   * The client's session (a 2025-11-25 session, one stdio connection); PII tokens are stable
   * and resolve within it. Absent on stateless requests: the principal alone is the scope.
   */
  session?: string
  /** The `tools/call` span's context, set by `traced`: the engine's spans nest under it. */
  traceParent?: Context
}

/** The 2026-07-28 answer that asks the client for input and to retry (basic/patterns/mrtr). */
export interface InputRequiredAnswer {
  resultType: 'input_required'
  inputRequests?: Record<string, unknown>
  requestState?: string
}

/** How an era without push-style elicitation asks for an approval: stop, ask, resume. */
export interface DurableApprovals {
  /** The client's answer and the `requestState` it echoed, on a retried request. */
  resume?: { token: string; answer: 'accept' | 'decline' }
  /** The era's question for a stopped execution. */
  ask(suspended: SuspendedExecution): InputRequiredAnswer
}

export interface SurfaceOptions {
  engine: GatewayEngine
  config: Config
  /** Reports engine bugs (a throw from `execute`); the client only sees `INTERNAL`. */
  onInternalError?: (err: unknown) => void
}

/**
 * A JSON-RPC error answer. Not an SDK error class: SDK 1.x's `McpError` prefixes its message
 * with "MCP error <code>:", and the client's `McpError` adds the prefix again.
 */
export class ProtocolError extends Error {
  readonly code: number
  readonly data: unknown
  constructor(code: number, message: string, data?: unknown) {
    super(message)
    this.code = code
    this.data = data
  }
}

/** Direct-mode tools an unknown-tool error names; the rest are counted. */
const MAX_NAMED_TOOLS = 20

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
        ? INVALID_PARAMS
        : typeof upstreamCode === 'number'
          ? upstreamCode
          : INTERNAL_ERROR
    throw new ProtocolError(code, err.message, { code: err.code })
  }
}

export type Surface = ReturnType<typeof createSurface>

/** Builds the era-neutral handlers for one engine and config. */
export function createSurface(options: SurfaceOptions) {
  const { engine, config } = options
  const passthrough = passthroughOf(engine)

  /**
   * What the engine gets for one request. `calls: true` (execute_code) also reports each inner
   * call as it completes; a direct-mode call is one call, its answer says it completed.
   */
  const executeOptions = (scope: RequestScope, calls = false): ExecuteOptions => {
    const progress = scope.progress
    return {
      signal: scope.signal,
      ...(scope.who.token === undefined ? {} : { inboundToken: scope.who.token }),
      ...(scope.who.traceContext === undefined ? {} : { traceContext: scope.who.traceContext }),
      ...(progress === undefined
        ? {}
        : {
            onProgress: progress.note,
            onUpstreamProgress: progress.upstream,
            ...(calls ? { onCallDone: progress.done } : {}),
          }),
      ...(scope.approve === undefined ? {} : { approve: scope.approve }),
      ...(scope.session === undefined ? {} : { session: scope.session }),
      ...(scope.traceParent === undefined ? {} : { traceParent: scope.traceParent }),
    }
  }

  function listTools(principal: Principal): Tool[] {
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
    return tools
  }

  const handleCall = async (
    name: string,
    args: Record<string, unknown>,
    scope: RequestScope,
    durable?: DurableApprovals,
  ): Promise<OuterToolResult | InputRequiredAnswer> => {
    if (name === EXECUTE_CODE) {
      const code = args['code']
      if (typeof code !== 'string') {
        return failedExecution('INVALID_ARGS', 'execute_code needs `code`, a string of TypeScript')
      }
      try {
        const result = await engine.execute(scope.who.principal, code, {
          ...executeOptions(scope, true),
          ...(durable === undefined
            ? {}
            : { durable: durable.resume === undefined ? {} : { resume: durable.resume } }),
        })
        return result.suspended === undefined
          ? toCallToolResult(result)
          : durable!.ask(result.suspended)
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
      return toSearchResult(engine.searchTools(scope.who.principal, query, limit))
    }

    if (config.gateway.directMode) {
      const tool = directTools(engine.listTools(scope.who.principal)).get(name)
      if (tool !== undefined) {
        try {
          const result = await engine.callDirect(scope.who.principal, tool, args, {
            ...executeOptions(scope),
            ...(durable === undefined
              ? {}
              : { durable: durable.resume === undefined ? {} : { resume: durable.resume } }),
          })
          return result.suspended === undefined
            ? (result as OuterToolResult)
            : durable!.ask(result.suspended)
        } catch (err) {
          options.onInternalError?.(err)
          return toolError('internal error in the gateway; the call did not complete')
        }
      }
    }
    // A protocol error, as the spec says for an unknown tool (tools, "Error Handling"): a client
    // that asked for a tool sluice does not serve has a bug, not a failed tool run.
    const direct = config.gateway.directMode
      ? [...directTools(engine.listTools(scope.who.principal)).keys()]
      : []
    throw new ProtocolError(
      INVALID_PARAMS,
      `Unknown tool "${name.slice(0, 128)}". Available: ${[EXECUTE_CODE, SEARCH_TOOLS, ...direct.slice(0, MAX_NAMED_TOOLS)].join(', ')}${direct.length > MAX_NAMED_TOOLS ? ` and ${direct.length - MAX_NAMED_TOOLS} more in tools/list` : ''}.`,
    )
  }

  /** `tools/call`: one server span per request; the engine's spans nest under it. */
  function callTool(
    name: string,
    args: Record<string, unknown>,
    scope: RequestScope,
  ): Promise<OuterToolResult> {
    return traced(
      name,
      scope,
      (traced) => handleCall(name, args, traced) as Promise<OuterToolResult>,
    )
  }

  /**
   * `tools/call` where an approval stops the execution instead of waiting (2026-07-28): the
   * answer may be the question (`input_required`) rather than a result.
   */
  function callToolDurable(
    name: string,
    args: Record<string, unknown>,
    scope: RequestScope,
    durable: DurableApprovals,
  ): Promise<OuterToolResult | InputRequiredAnswer> {
    return traced(name, scope, (traced) => handleCall(name, args, traced, durable))
  }

  /**
   * `tools/call` from a client that declared the tasks extension (2026-07-28): `execute_code`
   * answers at once with a task, whose execution goes on after this request; every other tool
   * answers as usual. A refused task (`TASK_LIMIT`, a store outage) is a plain failed result.
   */
  function callToolAsTask(
    name: string,
    args: Record<string, unknown>,
    scope: RequestScope,
    tasks: TaskEngine,
    canAsk: boolean,
  ): Promise<OuterToolResult | TaskAnswer> {
    if (name !== EXECUTE_CODE) return callTool(name, args, scope)
    return traced(name, scope, async (traced) => {
      const code = args['code']
      if (typeof code !== 'string')
        return failedExecution('INVALID_ARGS', 'execute_code needs `code`, a string of TypeScript')
      try {
        const started = await tasks.start(scope.who.principal, code, {
          ...(scope.who.token === undefined ? {} : { inboundToken: scope.who.token }),
          ...(traced.traceParent === undefined ? {} : { traceParent: traced.traceParent }),
          canAsk,
        })
        return started.ok
          ? createTaskResult(started.task)
          : toCallToolResult({
              ok: false,
              result: undefined,
              logs: [],
              calls: [],
              error: started.error,
            })
      } catch (err) {
        options.onInternalError?.(err)
        return failedExecution(
          'INTERNAL',
          'internal error in the gateway; the task was not created',
        )
      }
    })
  }

  function traced<T extends OuterToolResult | InputRequiredAnswer | TaskAnswer>(
    name: string,
    scope: RequestScope,
    work: (traced: RequestScope) => Promise<T>,
  ): Promise<T> {
    const tc = scope.who.traceContext
    // A caller's traceparent is honoured, its baggage and tracestate are not.
    const parent =
      tc !== undefined && tc !== null && typeof tc === 'object'
        ? extractTraceContext(tc as Record<string, unknown>)
        : undefined
    return withSpan(
      `tools/call ${name.slice(0, 64)}`,
      {
        kind: 'server',
        ...(parent ? { parent } : {}),
        attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': name.slice(0, 128) },
      },
      async (span, traceParent) => {
        const result = await work({ ...scope, traceParent })
        if (!('resultType' in result) && result.isError) {
          const code = (result.structuredContent as { error?: { code?: unknown } } | undefined)
            ?.error?.code
          setSafeAttributes(span, { 'error.type': typeof code === 'string' ? code : 'TOOL_ERROR' })
        }
        return result
      },
    )
  }

  /** An approval stops the request instead of waiting (2026-07-28). */
  const durableOptions = (scope: RequestScope, durable: DurableApprovals) => ({
    ...executeOptions(scope),
    durable: durable.resume === undefined ? {} : { resume: durable.resume },
  })
  /** A stopped request answers with its question. */
  const asked = <T extends object>(
    result: T | { suspended: SuspendedExecution },
    durable: DurableApprovals,
  ): T | InputRequiredAnswer => ('suspended' in result ? durable.ask(result.suspended) : result)
  /** Without `durable` nothing stops: a request waits for its approval, or is refused. */
  const settled = <T extends object>(result: T | { suspended: SuspendedExecution }): T => {
    if ('suspended' in result) throw new Error('a request without durable approvals stopped')
    return result
  }

  const prompts =
    passthrough === undefined
      ? undefined
      : {
          list: async (principal: Principal) => ({
            prompts: await passthrough.listPrompts(principal),
          }),
          get: (name: string, args: Record<string, string>, scope: RequestScope) =>
            protocolErrors(async () =>
              settled(
                await passthrough.getPrompt(scope.who.principal, name, args, executeOptions(scope)),
              ),
            ),
          /** `prompts/get` where an approval stops the request (2026-07-28). */
          getDurable: (
            name: string,
            args: Record<string, string>,
            scope: RequestScope,
            durable: DurableApprovals,
          ) =>
            protocolErrors(async () =>
              asked(
                await passthrough.getPrompt(
                  scope.who.principal,
                  name,
                  args,
                  durableOptions(scope, durable),
                ),
                durable,
              ),
            ),
        }
  const resources =
    passthrough === undefined
      ? undefined
      : {
          list: async (principal: Principal) => ({
            resources: await passthrough.listResources(principal),
          }),
          listTemplates: async (principal: Principal) => ({
            resourceTemplates: await passthrough.listResourceTemplates(principal),
          }),
          read: (uri: string, scope: RequestScope) =>
            protocolErrors(async () =>
              settled(
                await passthrough.readResource(scope.who.principal, uri, executeOptions(scope)),
              ),
            ),
          /** `resources/read` where an approval stops the request (2026-07-28). */
          readDurable: (uri: string, scope: RequestScope, durable: DurableApprovals) =>
            protocolErrors(async () =>
              asked(
                await passthrough.readResource(
                  scope.who.principal,
                  uri,
                  durableOptions(scope, durable),
                ),
                durable,
              ),
            ),
        }

  return {
    capabilities: {
      tools: {},
      ...(passthrough === undefined ? {} : { prompts: {}, resources: {} }),
    },
    listTools,
    callTool,
    callToolDurable,
    callToolAsTask,
    prompts,
    resources,
  }
}
