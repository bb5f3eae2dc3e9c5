/**
 * Shared nouns of sluice. Every module may import this file; it imports nothing.
 *
 * @module
 */

/** A JSON value as it crosses every boundary in sluice (guest ↔ host ↔ upstream). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** A JSON object with arbitrary keys. */
export type JsonObject = { [key: string]: Json }

/** Brand helper: a string that must not be swapped with another string of a different meaning. */
export type Brand<T, B extends string> = T & { readonly __brand: B }

/** `sha256:<hex>` of a tool definition's canonical JSON. */
export type DefinitionHash = Brand<string, 'DefinitionHash'>

/** The caller, proven by a verified token (HTTP) or named by the config (stdio, run). */
export interface Principal {
  /** Subject: a user id or a SPIFFE ID (`spiffe://trust-domain/path`). */
  readonly sub: string
  /** Issuer of the token; `local` for a config-named principal. */
  readonly iss: string
  /** Tenant, from the configured tenant claim; undefined when the token has none. */
  readonly tenant?: string
  /** Scopes from `scope` (space separated) or `scp` (list). */
  readonly scopes: readonly string[]
  /** Every verified claim of the token (never the token itself). */
  readonly claims: Readonly<Record<string, unknown>>
  /** How the principal was established. */
  readonly authMethod: 'jwt' | 'mtls' | 'local'
}

/** MCP tool annotations (hints; untrusted, never used alone for authorisation). */
export interface ToolAnnotations {
  title?: string
  readOnlyHint?: boolean
  destructiveHint?: boolean
  idempotentHint?: boolean
  openWorldHint?: boolean
  [key: string]: unknown
}

/** A tool definition as an upstream MCP server lists it (`tools/list`). */
export interface ToolDefinition {
  name: string
  title?: string
  description?: string
  inputSchema: Record<string, unknown>
  outputSchema?: Record<string, unknown>
  annotations?: ToolAnnotations
  [key: string]: unknown
}

/** A tool of one configured server, as the gateway knows it. */
/**
 * How risky a tool (or a server) is, 0 to 10, with one reason per field that added to it
 * (`+2 annotations.destructiveHint: true`). Pinned in the lock; `tool.risk` in CEL.
 */
export interface Risk {
  score: number
  level: 'low' | 'medium' | 'high'
  reasons: string[]
}

export interface CatalogTool {
  /** The config key of the server (`servers.<name>`). */
  readonly server: string
  /** The upstream's own spelling of the tool name. */
  readonly name: string
  /** The name as a JS identifier in `tools.<server>.<ident>` (`get-sum` → `get_sum`). */
  readonly ident: string
  readonly definition: ToolDefinition
  /** Hash of the definition's canonical JSON. */
  readonly hash: DefinitionHash
  /** From the lock when pinned, else scored from the live definition and the server's config. */
  readonly risk?: Risk
}

/** The decision of policy for one inner call (or for listing a tool). */
export type DecisionEffect = 'allow' | 'deny' | 'approve'

export interface Decision {
  readonly effect: DecisionEffect
  /** The id of the deciding rule; `default-deny` when no rule matched. */
  readonly ruleId: string
  /** Human-readable reason, safe to show the model (no argument values). */
  readonly reason: string
}

/** One inner tool call as reported in an execution result. */
export interface CallRecord {
  /** `server.tool` with the upstream's own tool spelling. */
  tool: string
  ok: boolean
  ms: number
  /** The policy decision: `allow`, `deny`, `approve` (approved by a human), or an error code. */
  decision: string
  /** Error code when `ok` is false. */
  code?: string
}

/** The error of a failed execution, as the model sees it. */
export interface ExecutionError {
  code: string
  message: string
  /** 1-based line in the model's own source. */
  line?: number
  /** 1-based column in the model's own source. */
  column?: number
  /** Type-check diagnostics of the code against the tool declarations, when available. */
  diagnostics?: Diagnostic[]
  /** For `OVERLOADED` and `RATE_LIMITED`: when a retry may succeed. */
  retryAfterMs?: number
}

/** A TypeScript diagnostic of the model's code, in the model's own coordinates. */
export interface Diagnostic {
  line: number
  column: number
  message: string
  /** A suggestion such as "did you mean `tools.memory.read_graph`?" */
  hint?: string
}

/**
 * Something in a successful result that is probably a mistake but did not stop it (DESIGN.md
 * §3b): a Promise, Map or Set in the result, a getter that was not run, …
 */
export interface ExecutionWarning {
  code: string
  message: string
  /** Where in the result, as `result.items[2].when`. */
  path?: string
  /** 1-based line in the model's own source, when the host can name it. */
  line?: number
}

/** The result of one `execute_code`: DESIGN.md section 3. */
export interface ExecutionResult {
  ok: boolean
  result: Json | undefined
  logs: string[]
  calls: CallRecord[]
  /** Present only when there is at least one. */
  warnings?: ExecutionWarning[]
  error?: ExecutionError
  /**
   * Set, with `ok: false` and no `error`, when the execution stopped at an `approve` rule to be
   * resumed (durable approvals, MCP 2026-07-28): the gateway asks the client the question and
   * runs the code again with `token` and the answer. Never shown to the model.
   */
  suspended?: SuspendedExecution
}

/** An execution waiting for a human, as the gateway asks for the answer. */
export interface SuspendedExecution {
  /** Opaque; echoed back by the client as `requestState`. */
  token: string
  question: { tool: string; argsSummary: string; ruleId: string; reason: string }
  /** Epoch milliseconds. */
  expiresAt: number
}

/** A task's status (MCP 2026-07-28 tasks extension); the last three never change again. */
export type TaskStatus = 'working' | 'input_required' | 'completed' | 'failed' | 'cancelled'

/** One `execute_code` task as its caller may see it (src/engine/tasks.ts). */
export interface TaskView {
  /** 144 random bits, base64url; found only with the principal that created it. */
  taskId: string
  status: TaskStatus
  statusMessage: string
  /** Epoch milliseconds. */
  createdAt: number
  lastUpdatedAt: number
  /** How long the task is kept, from `createdAt`. */
  ttlMs: number
  pollIntervalMs: number
  /** `completed`, and `cancelled` when the execution reported its end: the execution's result. */
  result?: ExecutionResult
  /** `failed`: why; the execution left no result (its replica died, or a bug). */
  failure?: string
  /**
   * `input_required`: the approval the execution stopped at, under a key never used twice in
   * this task's life.
   */
  input?: { key: string; question: SuspendedExecution['question']; expiresAt: number }
}
