/**
 * One MCP client per configured upstream server (stdio, Streamable HTTP, or the older HTTP+SSE
 * transport for `type: sse`), built on the official
 * SDK. It connects lazily, respawns or reconnects after a crash with capped, jittered backoff,
 * bounds every call by a timeout, forwards cancellation upstream, and turns every failure into a
 * `SluiceError` with a sanitised message.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { AnySchema, SchemaOutput } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import {
  CallToolResultSchema,
  ListToolsResultSchema,
  McpError,
  ProgressNotificationSchema,
  ToolListChangedNotificationSchema,
  type ServerCapabilities,
} from '@modelcontextprotocol/sdk/types.js'
import { readSecretRef, type ServerConfig } from '../config/index.js'
import { SluiceError } from '../errors.js'
import type { ToolDefinition } from '../types.js'
import { backoffDelayMs } from './backoff.js'
import { sanitizeMessage, stripMcpPrefix } from './sanitize.js'

/** JSON-RPC "invalid params": SDK v2 servers answer an unknown tool or bad arguments with it. */
export const JSONRPC_INVALID_PARAMS = -32602

/** Bytes of a stdio server's stderr kept for diagnostics (the newest ones). */
export const DEFAULT_STDERR_BYTES = 16 * 1024
/** Time a server gets to answer a ping after a call timed out, before it is restarted. */
export const DEFAULT_PROBE_TIMEOUT_MS = 2_000
/** Pages of `tools/list` followed before giving up on a server that never stops paginating. */
export const MAX_TOOL_LIST_PAGES = 100

/** Headers the transport owns; a per-call header never overrides them. */
const RESERVED_HEADERS = new Set([
  'accept',
  'content-type',
  'content-length',
  'host',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
])

/** The most a call that reports progress may run: `maxTotalMs`, never below its timeout. */
export function totalMs(timeoutMs: number, maxTotalMs: number | undefined): number {
  return Math.max(timeoutMs, maxTotalMs ?? timeoutMs)
}

/**
 * When a call that just reported progress, `elapsedMs` after it started, times out next: a full
 * `timeoutMs` from now (`timeout`), or sooner at its total (`total`) when that comes first or
 * at the same moment.
 */
export function nextDeadline(
  timeoutMs: number,
  maxTotalMs: number,
  elapsedMs: number,
): { inMs: number; reason: 'timeout' | 'total' } {
  const left = maxTotalMs - elapsedMs
  return left <= timeoutMs
    ? { inMs: Math.max(0, left), reason: 'total' }
    : { inMs: timeoutMs, reason: 'timeout' }
}

/** Connection state, as `health()` reports it. */
export type UpstreamState = 'idle' | 'connecting' | 'ready' | 'backoff' | 'closed'

/** A snapshot of one upstream's connection, for `/readyz` and diagnostics. */
export interface UpstreamHealth {
  state: UpstreamState
  /** Sanitised reason of the last failure. */
  lastError?: string
  /** Connect attempts after the first one (respawns and reconnects), successful or not. */
  restarts: number
  /** In `backoff`: milliseconds until the next connect attempt; calls before it fail at once. */
  retryInMs?: number
  /** The server's own `serverInfo` from the last successful initialize. */
  serverInfo?: { name: string; version: string }
  /** A call timed out and the server is being pinged to tell a slow call from a wedged server. */
  probing: boolean
}

/** A content block of a tool result, as the upstream sent it. */
export type ToolResultContent = { type: string; [key: string]: unknown }

/** The raw result of `tools/call`; `isError` results are returned, never thrown. */
export interface ToolCallResult {
  content: ToolResultContent[]
  structuredContent?: Record<string, unknown>
  isError?: boolean
  _meta?: Record<string, unknown>
  [key: string]: unknown
}

/** A logger with pino's argument order (fastify's logger fits). */
export interface UpstreamLogger {
  warn(fields: Record<string, unknown>, message: string): void
  info?(fields: Record<string, unknown>, message: string): void
}

export interface UpstreamOptions {
  /** Timeout of one call when the server config sets no `timeoutMs`. */
  callTimeoutMs: number
  /** Sent as `clientInfo` in initialize. */
  clientInfo: { name: string; version: string }
  /** Called when the server sends `notifications/tools/list_changed`. */
  onToolsChanged?: () => void
  logger?: UpstreamLogger
  /** Time allowed for spawn/connect + initialize; default: the call timeout. */
  connectTimeoutMs?: number
  /** Time a server gets to answer a ping after a call timed out; default 2000. */
  probeTimeoutMs?: number
  /** First non-zero reconnect delay; default 100. */
  initialBackoffMs?: number
  /** Cap of the reconnect delay; default 5000. */
  maxBackoffMs?: number
  /** Bytes of stderr kept; default 16 KiB. */
  stderrBytes?: number
  /**
   * HTTP only: headers for requests that belong to no call (initialize, the notification
   * stream, ping, session end), e.g. a gateway-level credential. Per-call headers replace them.
   */
  sessionHeaders?: () => Record<string, string> | Promise<Record<string, string>>
  /** Randomness for backoff jitter; tests pin it. */
  random?: () => number
}

export interface CallOptions {
  /** Aborting it cancels the call here and sends `notifications/cancelled` upstream. */
  signal?: AbortSignal
  /** Overrides the server's timeout for this call. */
  timeoutMs?: number
  /** HTTP only: extra headers for this call's requests (credentials); ignored for stdio. */
  headers?: Readonly<Record<string, string>>
  /** Goes into `params._meta` (e.g. `traceparent`); built by the host, never by the guest. */
  meta?: Readonly<Record<string, unknown>>
  /**
   * `tools/call` only: asks the upstream for progress (a `progressToken` in `_meta`) and is
   * called with each notification it sends for this call. Each one also restarts the timeout,
   * up to `maxTotalMs` from the start of the call.
   */
  onProgress?: (progress: UpstreamProgress) => void
  /**
   * With `onProgress`: the most a call may run while its progress keeps restarting the timeout.
   * Never shortens a call: below the timeout, the timeout wins. Default: the timeout (no reset).
   */
  maxTotalMs?: number
}

/** One `notifications/progress` of an upstream, without its token. */
export interface UpstreamProgress {
  progress: number
  total?: number
  message?: string
}

export interface ListOptions {
  signal?: AbortSignal
  timeoutMs?: number
  headers?: Readonly<Record<string, string>>
}

interface Session {
  readonly id: number
  readonly client: Client
  readonly transport: Transport
  /** Set when the connection closed or was recycled; in-flight requests then fail. */
  dead: boolean
  /** Set when the upstream sent something that is not JSON-RPC. */
  malformed: boolean
  /** Set when we closed it on purpose (close(), recycle). */
  closing: boolean
  probing: boolean
}

/** A fixed-size tail of a byte stream. */
class ByteRing {
  readonly #maxBytes: number
  #chunks: Buffer[] = []
  #bytes = 0

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    while (this.#bytes > this.#maxBytes && this.#chunks.length > 0) {
      const head = this.#chunks[0]!
      const excess = this.#bytes - this.#maxBytes
      if (head.length <= excess) {
        this.#chunks.shift()
        this.#bytes -= head.length
      } else {
        this.#chunks[0] = head.subarray(excess)
        this.#bytes -= excess
      }
    }
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8')
  }
}

/**
 * The secret environment variables of an `env` grant, read at each start (a rotated secret is
 * picked up by the next respawn). `file:` paths were made absolute when the config loaded.
 */
function envGrant(config: ServerConfig): Record<string, string> {
  if (config.credentials?.grant !== 'env') return {}
  return Object.fromEntries(
    Object.entries(config.credentials.env).map(([name, ref]) => [name, readSecretRef(ref, '/')]),
  )
}

function isHttp(config: ServerConfig): config is Extract<ServerConfig, { url: string }> {
  return 'url' in config
}

function isZodError(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'ZodError' || Array.isArray((error as { issues?: unknown }).issues))
  )
}

function isParseError(error: unknown): boolean {
  return error instanceof SyntaxError || isZodError(error)
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause
    // fetch() says only "fetch failed"; the reason (ECONNREFUSED…) is in the cause.
    if (error.message === 'fetch failed' && cause instanceof Error)
      return `fetch failed: ${cause.message}`
    return error.message
  }
  return String(error)
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/**
 * An MCP client to one upstream server. Safe to share: calls run in parallel over one session.
 *
 * @example
 * ```ts
 * const memory = new Upstream('memory', config.servers.memory, { callTimeoutMs: 30_000, clientInfo })
 * const tools = await memory.listTools()
 * const result = await memory.callTool('read_graph', {}, { signal })
 * await memory.close()
 * ```
 */
export class Upstream {
  /** The config key of the server. */
  readonly name: string
  readonly #config: ServerConfig
  readonly #options: UpstreamOptions
  readonly #stderr: ByteRing
  readonly #headers = new AsyncLocalStorage<Readonly<Record<string, string>>>()
  #session: Session | undefined
  #connecting: Promise<Session> | undefined
  /** The session `#connecting` is making, before its `initialize` is answered. */
  #opening: Session | undefined
  #sessionSeq = 0
  /** Listeners of the calls that asked for progress, by the token sent upstream. */
  readonly #progress = new Map<string, (progress: UpstreamProgress) => void>()
  #progressSeq = 0
  #failures = 0
  #retryAt = 0
  #restarts = 0
  #attempts = 0
  /**
   * A `url` without `type` turned out to be an HTTP+SSE server (Streamable HTTP refused with a
   * 4xx and the SSE stream opened): later connects go straight to SSE.
   */
  #sseFallback = false
  #closed = false
  #lastError: string | undefined
  #serverInfo: { name: string; version: string } | undefined

  constructor(name: string, config: ServerConfig, options: UpstreamOptions) {
    if (!Number.isInteger(options.callTimeoutMs) || options.callTimeoutMs <= 0) {
      throw new TypeError('callTimeoutMs must be a positive integer')
    }
    this.name = name
    this.#config = config
    this.#options = options
    this.#stderr = new ByteRing(options.stderrBytes ?? DEFAULT_STDERR_BYTES)
  }

  /** The timeout a call gets unless it passes its own. */
  get timeoutMs(): number {
    return this.#config.timeoutMs ?? this.#options.callTimeoutMs
  }

  /**
   * Connects now instead of on first use.
   *
   * @throws SluiceError `UPSTREAM_UNAVAILABLE` when it cannot connect (or is in backoff).
   */
  async connect(): Promise<void> {
    await this.#ensureSession()
  }

  /**
   * Lists every tool, following pagination.
   *
   * @throws SluiceError `UPSTREAM_UNAVAILABLE`, `TOOL_TIMEOUT`, `CANCELLED` or `TOOL_ERROR`.
   */
  async listTools(options: ListOptions = {}): Promise<ToolDefinition[]> {
    return this.#run('tools/list', options, async (session, signal, timeoutMs) => {
      const tools: ToolDefinition[] = []
      let cursor: string | undefined
      for (let page = 0; page < MAX_TOOL_LIST_PAGES; page++) {
        const result = await session.client.request(
          { method: 'tools/list', params: cursor === undefined ? {} : { cursor } },
          ListToolsResultSchema,
          // Our own timer decides; the SDK's is a backstop that must not fire first.
          { signal, timeout: timeoutMs + 1_000 },
        )
        tools.push(...(result.tools as ToolDefinition[]))
        cursor = result.nextCursor
        if (cursor === undefined) return tools
      }
      throw new SluiceError(
        'TOOL_ERROR',
        `upstream ${this.name} paginated tools/list beyond ${MAX_TOOL_LIST_PAGES} pages`,
      )
    })
  }

  /**
   * Calls one tool and returns the upstream's raw result. An `isError` result is returned as is;
   * failures of the call itself throw.
   *
   * @throws SluiceError `TOOL_ERROR` (crash, garbage, JSON-RPC error: `details.jsonRpcCode`),
   *   `TOOL_TIMEOUT`, `CANCELLED`, `UPSTREAM_UNAVAILABLE`.
   */
  async callTool(
    name: string,
    args: Record<string, unknown>,
    options: CallOptions = {},
  ): Promise<ToolCallResult> {
    return this.#run(`tools/call ${name}`, options, async (session, signal, timeoutMs, touch) => {
      // params are built here so nothing from `args` can reach `params._meta`.
      const params: {
        name: string
        arguments: Record<string, unknown>
        _meta?: Record<string, unknown>
      } = {
        name,
        arguments: args,
      }
      if (options.meta !== undefined) params._meta = { ...options.meta }
      const onProgress = options.onProgress
      // Progress is routed here, not by the SDK's `onprogress`: the SDK 1.x client retires a
      // request's progress handler when the response arrives, before it dispatches a progress
      // notification that came just ahead of it (typescript-sdk#2580), so the last progress of
      // a fast tool would be lost. This listener stays until the response has been handled.
      let token: string | undefined
      if (onProgress !== undefined) {
        token = `sluice-${++this.#progressSeq}`
        params._meta = { ...params._meta, progressToken: token }
        this.#progress.set(token, (p) => {
          touch()
          onProgress(p)
        })
      }
      try {
        // tools/call goes through request() rather than client.callTool(): that one validates
        // structuredContent against the *live* outputSchema, and pinned schemas are the engine's.
        const result = await session.client.request(
          { method: 'tools/call', params },
          CallToolResultSchema,
          {
            signal,
            // The SDK's timer stays a second behind ours, so ours decide and name the limit.
            timeout:
              (onProgress === undefined ? timeoutMs : totalMs(timeoutMs, options.maxTotalMs)) +
              1_000,
          },
        )
        return result as ToolCallResult
      } finally {
        if (token !== undefined) this.#progress.delete(token)
      }
    })
  }

  /**
   * One request of any other method (prompts, resources), bounded, cancellable and mapped to
   * `SluiceError` exactly like a tool call. `params` are the host's, never the guest's.
   *
   * @throws SluiceError as {@link callTool}.
   */
  async request<S extends AnySchema>(
    method: string,
    params: Record<string, unknown>,
    schema: S,
    options: CallOptions = {},
  ): Promise<SchemaOutput<S>> {
    return this.#run(method, options, (session, signal, timeoutMs) =>
      session.client.request({ method, params }, schema, { signal, timeout: timeoutMs + 1_000 }),
    )
  }

  /** The capabilities the server announced in `initialize` (connects first if needed). */
  async capabilities(options: ListOptions = {}): Promise<ServerCapabilities> {
    return this.#run('initialize', options, async (session) => {
      return session.client.getServerCapabilities() ?? {}
    })
  }

  /** Connection state, restarts and the last (sanitised) error. */
  health(): UpstreamHealth {
    let state: UpstreamState
    const waitMs = this.#retryAt - Date.now()
    if (this.#closed) state = 'closed'
    else if (this.#session !== undefined && !this.#session.dead) state = 'ready'
    else if (this.#connecting !== undefined) state = 'connecting'
    else if (waitMs > 0) state = 'backoff'
    else state = 'idle'
    const health: UpstreamHealth = {
      state,
      restarts: this.#restarts,
      probing: this.#session?.probing === true,
    }
    if (state === 'backoff') health.retryInMs = waitMs
    if (this.#lastError !== undefined) health.lastError = this.#lastError
    if (this.#serverInfo !== undefined) health.serverInfo = { ...this.#serverInfo }
    return health
  }

  /** The newest bytes the stdio server wrote to stderr (empty for HTTP). For operators only. */
  stderrTail(): string {
    return this.#stderr.text()
  }

  /** Ends the session (kills the child / terminates the HTTP session). Later calls fail. */
  async close(): Promise<void> {
    this.#closed = true
    const connecting = this.#connecting
    const session = this.#session
    const opening = this.#opening
    this.#session = undefined
    try {
      if (session !== undefined) await this.#closeSession(session)
      // A server still starting is stopped now, not waited for: one that never answers
      // `initialize` would hold the close (a failed start, a drain) for connectTimeoutMs.
      if (opening !== undefined) await this.#closeSession(opening)
    } finally {
      if (connecting !== undefined) {
        const late = await connecting.catch(() => undefined)
        if (late !== undefined) await this.#closeSession(late)
      }
    }
  }

  async #run<T>(
    what: string,
    options: CallOptions,
    work: (
      session: Session,
      signal: AbortSignal,
      timeoutMs: number,
      /** Restarts the timeout (a progress notification), never past the total. */
      touch: () => void,
    ) => Promise<T>,
  ): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs
    const maxTotalMs =
      options.onProgress === undefined ? timeoutMs : totalMs(timeoutMs, options.maxTotalMs)
    if (options.signal?.aborted) throw this.#cancelled(what)
    const controller = new AbortController()
    let why: 'timeout' | 'total' | 'cancelled' | undefined
    // HTTP requests read their extra headers from the async context. An abort runs the SDK's
    // cancel (which sends notifications/cancelled) synchronously in the context of whoever
    // aborts, so every abort is made inside this call's header scope: the cancellation then
    // carries the same credentials as the call it cancels, and never another call's.
    const scope =
      isHttp(this.#config) && options.headers !== undefined ? { ...options.headers } : undefined
    const inScope = <R>(fn: () => R): R =>
      scope === undefined ? this.#headers.exit(fn) : this.#headers.run(scope, fn)
    const onAbort = (): void => {
      why ??= 'cancelled'
      inScope(() => controller.abort(new Error('cancelled by the caller')))
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    let session: Session | undefined
    const started = performance.now()
    const expire = (reason: 'timeout' | 'total') => () => {
      why ??= reason
      inScope(() => controller.abort(new Error(reason)))
    }
    let timer = setTimeout(expire('timeout'), timeoutMs)
    let progressed = false
    let ended = false
    const touch = (): void => {
      if (why !== undefined || ended) return
      progressed = true
      clearTimeout(timer)
      const next = nextDeadline(timeoutMs, maxTotalMs, performance.now() - started)
      timer = setTimeout(expire(next.reason), next.inMs)
    }
    try {
      // A connect is shared by every call that waits for it, so it runs outside any call's headers.
      session = await abortable(
        this.#headers.exit(() => this.#ensureSession()),
        controller.signal,
      )
      const live = session
      const result = await inScope(() => work(live, controller.signal, timeoutMs, touch))
      this.#failures = 0
      return result
    } catch (error) {
      throw this.#mapError(error, what, session, why, { timeoutMs, maxTotalMs, progressed })
    } finally {
      ended = true
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  #cancelled(what: string): SluiceError {
    return new SluiceError('CANCELLED', `${what} on upstream ${this.name} was cancelled`)
  }

  #mapError(
    error: unknown,
    what: string,
    session: Session | undefined,
    why: 'timeout' | 'total' | 'cancelled' | undefined,
    limits: { timeoutMs: number; maxTotalMs: number; progressed: boolean },
  ): SluiceError {
    const { timeoutMs, maxTotalMs } = limits
    if (why === 'cancelled') return this.#cancelled(what)
    if (why === 'total') {
      if (session !== undefined) void this.#probe(session)
      return new SluiceError(
        'TOOL_TIMEOUT',
        `${what} on upstream ${this.name} reported progress but did not finish within ${maxTotalMs} ms, the most a call may run`,
        { details: { server: this.name, timeoutMs, maxTotalMs } },
      )
    }
    if (why === 'timeout') {
      if (session !== undefined) void this.#probe(session)
      return new SluiceError(
        'TOOL_TIMEOUT',
        limits.progressed
          ? `${what} on upstream ${this.name} sent neither progress nor its answer for ${timeoutMs} ms`
          : `${what} on upstream ${this.name} did not answer within ${timeoutMs} ms`,
        {
          details: { server: this.name, timeoutMs },
        },
      )
    }
    if (error instanceof SluiceError) return error
    const server = this.name
    if (session === undefined) {
      // Never reached the server: the connect failed or we are in backoff (already mapped).
      return new SluiceError(
        'UPSTREAM_UNAVAILABLE',
        `upstream ${server} is unavailable: ${sanitizeMessage(messageOf(error))}`,
        {
          details: { server },
        },
      )
    }
    if (session.malformed) {
      return new SluiceError(
        'TOOL_ERROR',
        `upstream ${server} sent a malformed message (not JSON-RPC) during ${what}`,
        {
          details: { server, reason: 'malformed_message' },
        },
      )
    }
    if (session.dead) {
      return new SluiceError(
        'TOOL_ERROR',
        `upstream ${server} closed the connection during ${what}`,
        {
          details: { server, reason: 'connection_closed' },
        },
      )
    }
    if (error instanceof McpError) {
      const text = sanitizeMessage(stripMcpPrefix(error.message))
      if (error.code === JSONRPC_INVALID_PARAMS) {
        return new SluiceError('TOOL_ERROR', `invalid params: ${text}`, {
          details: { server, jsonRpcCode: error.code },
        })
      }
      return new SluiceError('TOOL_ERROR', `upstream ${server} error ${error.code}: ${text}`, {
        details: { server, jsonRpcCode: error.code },
      })
    }
    if (isZodError(error)) {
      return new SluiceError(
        'TOOL_ERROR',
        `upstream ${server} returned a malformed result for ${what}`,
        {
          details: { server, reason: 'malformed_result' },
        },
      )
    }
    if (error instanceof StreamableHTTPError) {
      // The body of an HTTP error is the upstream's and never shown; the status is enough.
      const status = error.code
      if (status === 404 || status === undefined || status === -1)
        this.#recycle(session, `HTTP ${status ?? 'error'}`)
      return new SluiceError(
        'TOOL_ERROR',
        `upstream ${server} answered HTTP ${status ?? 'error'} to ${what}`,
        {
          details: { server, httpStatus: status },
        },
      )
    }
    // Anything else broke the transport (a failed fetch, a closed pipe): start afresh next time.
    this.#recycle(session, messageOf(error))
    return new SluiceError(
      'UPSTREAM_UNAVAILABLE',
      `upstream ${server} is unavailable: ${sanitizeMessage(messageOf(error))}`,
      {
        details: { server },
      },
    )
  }

  #ensureSession(): Promise<Session> {
    if (this.#closed) {
      return Promise.reject(
        new SluiceError('UPSTREAM_UNAVAILABLE', `upstream ${this.name} is closed`, {
          details: { server: this.name },
        }),
      )
    }
    const current = this.#session
    if (current !== undefined && !current.dead) return Promise.resolve(current)
    if (this.#connecting !== undefined) return this.#connecting
    const waitMs = this.#retryAt - Date.now()
    if (waitMs > 0) {
      const reason = this.#lastError === undefined ? '' : `: ${this.#lastError}`
      return Promise.reject(
        new SluiceError(
          'UPSTREAM_UNAVAILABLE',
          `upstream ${this.name} is unavailable, next attempt in ${waitMs} ms${reason}`,
          {
            details: { server: this.name, retryInMs: waitMs },
          },
        ),
      )
    }
    const connecting = this.#connect()
    this.#connecting = connecting
    void connecting.then(
      () => {
        if (this.#connecting === connecting) this.#connecting = undefined
      },
      () => {
        if (this.#connecting === connecting) this.#connecting = undefined
      },
    )
    return connecting
  }

  async #connect(fallingBack?: { reason: string }): Promise<Session> {
    if (fallingBack === undefined && this.#attempts++ > 0) this.#restarts++
    const transport = this.#makeTransport()
    // No capabilities: roots would make server-filesystem replace its allowed dirs; sampling and
    // elicitation are never forwarded to the model's client.
    const client = new Client(this.#options.clientInfo, { capabilities: {} })
    const session: Session = {
      id: ++this.#sessionSeq,
      client,
      transport,
      dead: false,
      malformed: false,
      closing: false,
      probing: false,
    }
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      if (this.#session === session) this.#options.onToolsChanged?.()
    })
    // Replaces the SDK's own progress routing (see callTool). A token no call holds any more
    // (progress after a timeout, a late one) is dropped quietly.
    client.setNotificationHandler(ProgressNotificationSchema, (n) => {
      const { progress, total, message } = n.params
      this.#progress.get(String(n.params.progressToken))?.({
        progress,
        ...(total === undefined ? {} : { total }),
        ...(message === undefined ? {} : { message }),
      })
    })
    client.onclose = () => this.#onClosed(session)
    client.onerror = (error) => this.#onError(session, error)
    const connectTimeoutMs = this.#options.connectTimeoutMs ?? this.timeoutMs
    this.#opening = session
    try {
      await client.connect(transport, { timeout: connectTimeoutMs })
    } catch (error) {
      session.dead = true
      await this.#closeSession(session)
      if (this.#closed) {
        // close() stopped it while it started: nothing failed, so nothing to report or back off.
        throw new SluiceError('UPSTREAM_UNAVAILABLE', `upstream ${this.name} is closed`, {
          cause: error,
          details: { server: this.name },
        })
      }
      let reason =
        error instanceof McpError && error.code === -32001
          ? `no answer to initialize within ${connectTimeoutMs} ms`
          : sanitizeMessage(stripMcpPrefix(messageOf(error)))
      if (fallingBack === undefined && this.#mayBeSse(error)) {
        // MCP's backwards compatibility rule: a 4xx to the initialize POST may mean an older
        // HTTP+SSE server, so try its GET stream once (clients such as Cursor and Cline write a
        // bare `url` for both kinds).
        this.#sseFallback = true
        const status = (error as StreamableHTTPError).code
        return this.#connect({ reason: `Streamable HTTP answered HTTP ${status}` })
      }
      if (fallingBack !== undefined) {
        // Neither transport answered: the Streamable HTTP reason is the likelier diagnosis.
        this.#sseFallback = false
        reason = `${fallingBack.reason} (HTTP+SSE also failed: ${reason})`
      }
      this.#fail(reason)
      this.#options.logger?.warn(
        { server: this.name, err: reason, stderr: this.#stderr.text().slice(-2048) },
        'upstream connect failed',
      )
      throw new SluiceError(
        'UPSTREAM_UNAVAILABLE',
        `upstream ${this.name} is unavailable: ${reason}`,
        {
          cause: error,
          details: { server: this.name },
        },
      )
    } finally {
      if (this.#opening === session) this.#opening = undefined
    }
    if (this.#closed || session.dead) {
      await this.#closeSession(session)
      throw new SluiceError(
        'UPSTREAM_UNAVAILABLE',
        `upstream ${this.name} is ${this.#closed ? 'closed' : 'unavailable'}`,
        {
          details: { server: this.name },
        },
      )
    }
    const info = client.getServerVersion()
    if (info !== undefined) this.#serverInfo = { name: info.name, version: info.version }
    this.#session = session
    return session
  }

  #makeTransport(): Transport {
    const config = this.#config
    if (!isHttp(config)) {
      const transport = new StdioClientTransport({
        command: config.command,
        args: [...config.args],
        // The SDK adds HOME, LOGNAME, PATH, SHELL, TERM and USER; nothing else of ours leaks.
        env: { ...config.env, ...envGrant(config) },
        ...(config.cwd === undefined ? {} : { cwd: config.cwd }),
        stderr: 'pipe',
      })
      transport.stderr?.on('data', (chunk: Buffer) => this.#stderr.push(chunk))
      return transport
    }
    const store = this.#headers
    const sessionHeaders = this.#options.sessionHeaders
    const fetchWithHeaders = async (url: string | URL, init?: RequestInit): Promise<Response> => {
      const extra =
        store.getStore() ?? (sessionHeaders === undefined ? undefined : await sessionHeaders())
      if (extra === undefined) return fetch(url, init)
      const headers = new Headers(init?.headers)
      for (const [key, value] of Object.entries(extra)) {
        if (!RESERVED_HEADERS.has(key.toLowerCase())) headers.set(key, value)
      }
      return fetch(url, { ...init, headers })
    }
    if (config.type === 'sse' || this.#sseFallback) {
      // The deprecated transport, for servers that still only speak it (a GET opens the event
      // stream, POSTs carry requests). The SDK sends requestInit's headers on both and calls our
      // fetch for both, so per-call credentials work as they do over Streamable HTTP.
      return new SSEClientTransport(new URL(config.url), {
        requestInit: { headers: { ...config.headers } },
        fetch: fetchWithHeaders,
      })
    }
    return new StreamableHTTPClientTransport(new URL(config.url), {
      requestInit: { headers: { ...config.headers } },
      fetch: fetchWithHeaders,
      reconnectionOptions: {
        initialReconnectionDelay: 500,
        maxReconnectionDelay: 5_000,
        reconnectionDelayGrowFactor: 2,
        maxRetries: 2,
      },
    })
  }

  /** Whether a failed Streamable HTTP initialize may have met an HTTP+SSE server. */
  #mayBeSse(error: unknown): boolean {
    const config = this.#config
    if (!isHttp(config) || config.type !== undefined || this.#sseFallback) return false
    if (!(error instanceof StreamableHTTPError) || error.code === undefined) return false
    // 401/403 are about credentials, not the transport.
    return error.code >= 400 && error.code < 500 && error.code !== 401 && error.code !== 403
  }

  #fail(reason: string): void {
    this.#lastError = reason
    this.#failures++
    this.#retryAt = Date.now() + backoffDelayMs(this.#failures, this.#options)
  }

  #onClosed(session: Session): void {
    if (session.dead) return
    session.dead = true
    if (this.#session !== session) return
    this.#session = undefined
    if (session.closing || this.#closed) return
    const tail = this.#stderr.text().slice(-2048)
    this.#fail('the upstream closed the connection')
    this.#options.logger?.warn(
      { server: this.name, stderr: tail },
      'upstream connection closed unexpectedly',
    )
  }

  #onError(session: Session, error: Error): void {
    if (isParseError(error) && !session.dead) {
      // A stdio server must write only JSON-RPC to stdout. Once the session is up, anything else
      // means we can no longer trust which answer belongs to which request: start afresh.
      if (this.#session === session) {
        session.malformed = true
        this.#recycle(session, 'the upstream sent a malformed message')
      }
      return
    }
    this.#options.logger?.warn(
      { server: this.name, err: sanitizeMessage(messageOf(error)) },
      'upstream transport error',
    )
  }

  /** Drops a session we no longer trust; in-flight requests fail, the next call reconnects. */
  #recycle(session: Session, reason: string): void {
    if (session.dead) return
    session.dead = true
    if (this.#session === session) this.#session = undefined
    this.#fail(sanitizeMessage(reason))
    this.#options.logger?.warn(
      { server: this.name, reason: this.#lastError },
      'upstream session recycled',
    )
    void this.#closeSession(session)
  }

  /** After a timeout: a server that cannot even answer a ping is wedged and gets restarted. */
  async #probe(session: Session): Promise<void> {
    if (session.dead || session.probing) return
    session.probing = true
    try {
      await session.client.ping({
        timeout: this.#options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
      })
    } catch {
      if (!session.dead && this.#session === session)
        this.#recycle(session, 'no answer to ping after a timeout')
    } finally {
      session.probing = false
    }
  }

  async #closeSession(session: Session): Promise<void> {
    session.closing = true
    session.dead = true
    try {
      if (
        session.transport instanceof StreamableHTTPClientTransport &&
        session.transport.sessionId !== undefined
      ) {
        // Best effort: a server that is gone must not hold up our shutdown.
        await Promise.race([
          session.transport.terminateSession().catch(() => undefined),
          new Promise((resolve) => setTimeout(resolve, 1_000).unref()),
        ])
      }
    } finally {
      await session.client.close().catch(() => undefined)
    }
  }
}
