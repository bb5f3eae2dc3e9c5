/**
 * The 2026-07-28 binding of the surface (`surface.ts`) on SDK 2.x: stateless, one fresh
 * low-level `Server` per HTTP request, no `initialize` and no `Mcp-Session-Id`. Every request
 * carries its protocol version, client info and capabilities in `_meta`, so any replica
 * answers it. 2025-era requests never reach this handler (`legacy: 'reject'`): `app.ts` routes
 * them to the session binding (`mcp-server.ts`) with the SDK's own classifier.
 *
 * @module
 */
import {
  CLIENT_CAPABILITIES_META_KEY,
  Server,
  acceptedContent,
  createMcpHandler,
  inputRequired,
  isLegacyRequest,
  type McpHttpHandler,
  type ServerContext,
} from '@modelcontextprotocol/server'
import type { Config } from '../config/index.js'
import type { Principal } from '../types.js'
import { APPROVAL_SCHEMA, approvalMessage } from './approval.js'
import type { GatewayEngine } from './contracts.js'
import {
  TASKS_EXTENSION,
  declaresElicitation,
  declaresTasks,
  registerTaskHandlers,
} from './tasks.js'
import {
  SERVER_INSTRUCTIONS,
  SERVER_NAME,
  SERVER_VERSION,
  createSurface,
  identityOf,
  progressNotifier,
  type DurableApprovals,
  type RequestIdentity,
  type RequestScope,
} from './surface.js'

export { isLegacyRequest }

export interface ModernHandlerOptions {
  engine: GatewayEngine
  config: Config
  /** Upper bound on a POST body, the same as `gateway.maxBodyBytes`. */
  maxBodyBytes: number
  /** Reports engine bugs and SDK-level errors; the client only sees a sanitised answer. */
  onError?: (err: unknown) => void
}

/** Who sent a request: from the HTTP edge's authentication, or fixed (stdio). */
export type WhoOf = (ctx: ServerContext) => RequestIdentity

const fromHttp: WhoOf = (ctx) => identityOf(ctx.http?.authInfo)

function scopeOf(ctx: ServerContext, whoOf: WhoOf, session: string | undefined): RequestScope {
  const progress = progressNotifier(ctx.mcpReq._meta?.progressToken, (n) => ctx.mcpReq.notify(n))
  return {
    who: whoOf(ctx),
    signal: ctx.mcpReq.signal,
    ...(progress === undefined ? {} : { progress }),
    ...(session === undefined ? {} : { session }),
    // Push-style elicitation does not exist on 2026-07-28: `execute_code` asks through
    // `durableOf` (input_required); a client that cannot be asked, and the pass-through, get
    // "cannot ask".
    approve: async () => 'unsupported',
  }
}

/** The `inputRequests` key of the approval question. */
const APPROVAL_INPUT = 'approve'

/**
 * Approvals as multi round-trip requests, for a client that declared elicitation: the
 * execution stops at an approval and the answer is the question; the client retries the same
 * call with the human's answer and the `requestState` it was given, on any replica.
 */
function durableOf(ctx: ServerContext): DurableApprovals | undefined {
  // The SDK types the envelope as `{}`; the key and its shape are the spec's.
  const envelope = ctx.mcpReq.envelope as Record<string, { elicitation?: unknown }> | undefined
  const capabilities = envelope?.[CLIENT_CAPABILITIES_META_KEY]
  if (capabilities?.elicitation === undefined) return undefined
  const token = ctx.mcpReq.requestState<unknown>()
  // Only an explicit yes approves: decline, cancel, a missing or malformed answer refuse.
  const approved = acceptedContent(ctx.mcpReq.inputResponses, APPROVAL_INPUT)?.['approve'] === true
  return {
    ...(typeof token === 'string'
      ? { resume: { token, answer: approved ? 'accept' : 'decline' } }
      : {}),
    ask: (suspended) =>
      inputRequired({
        inputRequests: {
          [APPROVAL_INPUT]: inputRequired.elicit({
            mode: 'form',
            message: approvalMessage(suspended.question),
            requestedSchema: APPROVAL_SCHEMA,
          }),
        },
        requestState: suspended.token,
      }),
  }
}

/** What a 2026-07-28 server instance needs besides the engine and the config. */
export interface ModernServerOptions {
  engine: GatewayEngine
  config: Config
  /** Who sent each request. Default: the identity the HTTP edge verified. */
  whoOf?: WhoOf
  /**
   * Scopes PII tokens of every request this instance serves (one stdio connection). Default
   * none: over HTTP every request is stateless and the principal alone is the scope.
   */
  session?: string
  onError?: (err: unknown) => void
}

/** A factory of 2026-07-28 server instances on SDK 2.x, for HTTP (per request) and stdio. */
export function modernServerFactory(options: ModernServerOptions): () => Server {
  const surface = createSurface({
    engine: options.engine,
    config: options.config,
    ...(options.onError === undefined ? {} : { onInternalError: options.onError }),
  })
  const whoOf = options.whoOf ?? fromHttp
  const { session } = options
  const principalOf = (ctx: ServerContext): Principal => whoOf(ctx).principal
  const scope = (ctx: ServerContext): RequestScope => scopeOf(ctx, whoOf, session)
  const tasks = options.engine.tasks
  const capabilities =
    tasks === undefined
      ? surface.capabilities
      : { ...surface.capabilities, extensions: { [TASKS_EXTENSION]: {} } }
  return (): Server => {
    const server = new Server(
      { name: SERVER_NAME, version: SERVER_VERSION },
      { capabilities, instructions: SERVER_INSTRUCTIONS },
    )
    server.setRequestHandler('tools/list', (_request, ctx) => ({
      tools: surface.listTools(principalOf(ctx)) as never,
    }))
    server.setRequestHandler('tools/call', (request, ctx) => {
      const { name } = request.params
      const args = request.params.arguments ?? {}
      // The server decides (SEP-2663): a client that can take a task gets one for execute_code.
      if (tasks !== undefined && declaresTasks(ctx))
        return surface.callToolAsTask(
          name,
          args,
          scope(ctx),
          tasks,
          declaresElicitation(ctx),
        ) as never
      const durable = durableOf(ctx)
      return (
        durable === undefined
          ? surface.callTool(name, args, scope(ctx))
          : surface.callToolDurable(name, args, scope(ctx), durable)
      ) as never
    })
    if (tasks !== undefined) registerTaskHandlers(server, tasks)
    const { prompts, resources } = surface
    if (prompts !== undefined) {
      server.setRequestHandler(
        'prompts/list',
        (_request, ctx) => prompts.list(principalOf(ctx)) as never,
      )
      server.setRequestHandler('prompts/get', (request, ctx) => {
        const { name } = request.params
        const args = request.params.arguments ?? {}
        const durable = durableOf(ctx)
        return (
          durable === undefined
            ? prompts.get(name, args, scope(ctx))
            : prompts.getDurable(name, args, scope(ctx), durable)
        ) as never
      })
    }
    if (resources !== undefined) {
      server.setRequestHandler(
        'resources/list',
        (_request, ctx) => resources.list(principalOf(ctx)) as never,
      )
      server.setRequestHandler(
        'resources/templates/list',
        (_request, ctx) => resources.listTemplates(principalOf(ctx)) as never,
      )
      server.setRequestHandler('resources/read', (request, ctx) => {
        const durable = durableOf(ctx)
        return (
          durable === undefined
            ? resources.read(request.params.uri, scope(ctx))
            : resources.readDurable(request.params.uri, scope(ctx), durable)
        ) as never
      })
    }
    return server
  }
}

/** Builds the stateless handler; `close()` it when the app closes. */
export function createModernHandler(options: ModernHandlerOptions): McpHttpHandler {
  const factory = modernServerFactory(options)
  return createMcpHandler(factory, {
    legacy: 'reject',
    maxRequestBodySize: options.maxBodyBytes,
    ...(options.onError === undefined ? {} : { onerror: options.onError }),
  })
}
