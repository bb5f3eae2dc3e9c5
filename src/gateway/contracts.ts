/**
 * What the gateway needs from the engine and from auth, written as structural interfaces so the
 * gateway compiles and is tested on its own (a fake engine in tests); the real `Engine` of
 * `src/engine/` satisfies `GatewayEngine` without an adapter.
 *
 * @module
 */
import type { Context } from '@opentelemetry/api'
import type {
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
} from '@modelcontextprotocol/sdk/types.js'
import type {
  CatalogTool,
  ExecutionError,
  ExecutionResult,
  Principal,
  SuspendedExecution,
  TaskView,
} from '../types.js'

/** One approval question, asked when a policy rule has `effect: approve`. */
export interface ApprovalRequest {
  /** `server.tool`, the upstream's own tool spelling. */
  tool: string
  /** A short, redacted summary of the arguments, safe to show a human. */
  argsSummary: string
  ruleId: string
  reason: string
  /** The call's 0-based index in its execution. */
  index?: number
}

/**
 * The human's answer: `timeout` when nobody answered within `gateway.approvalTimeoutMs`,
 * `unsupported` when the client cannot be asked (no elicitation capability).
 */
export type ApprovalAnswer = 'accept' | 'decline' | 'timeout' | 'unsupported'

export type ApprovalHandler = (request: ApprovalRequest) => Promise<ApprovalAnswer>

/** Per-request options the gateway passes to `execute` and `callDirect`. */
export interface ExecuteOptions {
  /** Aborted when the client cancels the request (`notifications/cancelled`) or the session ends. */
  signal?: AbortSignal
  /** The caller's bearer token, for RFC 8693 exchange; never forwarded as is. */
  inboundToken?: string
  approve?: ApprovalHandler
  /** Something worth telling the client between two completed calls (a wait for approval). */
  onProgress?: (message: string) => void
  /** An upstream's progress for an inner call (`tool` is `server.tool`), its message made safe. */
  onUpstreamProgress?: (
    tool: string,
    progress: { progress: number; total?: number; message?: string },
  ) => void
  /** An inner call completed, either way. */
  onCallDone?: (tool: string, outcome: { ok: boolean; code?: string }) => void
  /** W3C trace context of the inbound HTTP request (`traceparent`, `tracestate`). */
  traceContext?: unknown
  /** The request's span context, parent of the engine's spans (passed, never made active). */
  traceParent?: Context
  /**
   * Durable approvals (MCP 2026-07-28): an `approve` rule stops the execution, which returns
   * with `suspended`; `resume` runs the code again with the client's answer to it.
   */
  durable?: { resume?: { token: string; answer: 'accept' | 'decline' } }
}

/** The result of a direct-mode call: an MCP `CallToolResult`. */
export interface DirectCallResult {
  content: unknown[]
  structuredContent?: unknown
  isError?: boolean
  /** With `durable`: the call stopped at an approval and waits for the client's answer. */
  suspended?: SuspendedExecution
}

export interface SearchMatch {
  /** `server.tool`. */
  tool: string
  declaration: string
  score: number
}

/** Declared matches, then the `tools.<server>.<tool>` paths of matches past the size budget. */
export interface SearchAnswer {
  matches: SearchMatch[]
  more: string[]
}

export interface EngineHealth {
  ready: boolean
  /** `restarts`: connect attempts after the first; `retryInMs`: in `backoff`, time to the next. */
  upstreams: Record<
    string,
    { state: string; lastError?: string; restarts?: number; retryInMs?: number }
  >
  pool: { workers: number; ready: number; busy: number }
  executions: { running: number; queued: number; draining: boolean }
}

/** Why an execution would not start now (the engine's admission). */
export interface AdmissionRefusal {
  code: 'OVERLOADED' | 'RATE_LIMITED' | 'CANCELLED'
  message: string
  retryAfterMs: number
}

/**
 * The upstreams' prompts and resources, namespaced per server and authorised by policy
 * (src/engine/passthrough.ts). Failures throw a `SluiceError`: `UNKNOWN_TOOL`, `TOOL_DENIED`,
 * `APPROVAL_DENIED`, or the upstream's (`details.jsonRpcCode` when it answered with one).
 */
export interface PassthroughEngine {
  listPrompts(principal: Principal): Promise<Prompt[]>
  getPrompt(
    principal: Principal,
    name: string,
    args: Readonly<Record<string, string>>,
    opts?: ExecuteOptions,
  ): Promise<GetPromptResult | { suspended: SuspendedExecution }>
  listResources(principal: Principal): Promise<Resource[]>
  listResourceTemplates(principal: Principal): Promise<ResourceTemplate[]>
  readResource(
    principal: Principal,
    uri: string,
    opts?: ExecuteOptions,
  ): Promise<ReadResourceResult | { suspended: SuspendedExecution }>
}

/** What a task's execution keeps of the request that started (or resumed) it. */
export interface TaskRunOptions {
  inboundToken?: string
  /** The client can answer an elicitation, so an approval makes the task `input_required`. */
  canAsk?: boolean
  /** The trace context of the request that started the task. */
  traceParent?: Context
}

/**
 * `execute_code` as tasks (src/engine/tasks.ts). Lookups by another principal find nothing,
 * exactly as for an id never issued; a store outage rejects with `STORE_UNAVAILABLE`.
 */
export interface TaskEngine {
  start(
    principal: Principal,
    code: string,
    options?: TaskRunOptions,
  ): Promise<{ ok: true; task: TaskView } | { ok: false; error: ExecutionError }>
  get(principal: Principal, taskId: string): Promise<TaskView | undefined>
  /** False when there is no such task. */
  cancel(principal: Principal, taskId: string): Promise<boolean>
  /** The answers to a task's input requests, by key; false when there is no such task. */
  answer(
    principal: Principal,
    taskId: string,
    answers: Readonly<Record<string, 'accept' | 'decline'>>,
    options?: TaskRunOptions,
  ): Promise<boolean>
}

/** The engine as the gateway uses it (src/engine's `Engine` satisfies it). */
export interface GatewayEngine extends Partial<PassthroughEngine> {
  /** Tools this principal may see (policy-filtered). */
  listTools(principal: Principal): CatalogTool[]
  /** The `execute_code` description: declarations, or a compact index. */
  describeExecuteCode(principal: Principal): string
  searchTools(principal: Principal, query: string, limit?: number): SearchAnswer
  /** Tasks of `execute_code`; without them the gateway announces no tasks extension. */
  readonly tasks?: TaskEngine
  /** Never throws for model behaviour; a throw is a bug and becomes `INTERNAL`. */
  execute(principal: Principal, code: string, opts?: ExecuteOptions): Promise<ExecutionResult>
  callDirect(
    principal: Principal,
    tool: CatalogTool,
    args: unknown,
    opts?: ExecuteOptions,
  ): Promise<DirectCallResult>
  health(): EngineHealth
  /** Whether an execution by `principal` would be refused now (answered at the HTTP edge). */
  checkAdmission(principal: Principal): Promise<AdmissionRefusal | undefined>
  /** Refuses new and queued executions from now on (SIGTERM); running ones finish. */
  drain(): void
  /** Resolves when no execution is running. */
  idle(): Promise<void>
  close(): Promise<void>
}
