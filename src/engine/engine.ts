/**
 * One execution end to end, and the dispatcher behind every inner tool call. The only module that
 * knows several leaves: sandbox = mechanism, engine = decisions.
 *
 * Order of checks for an inner call (each one fails closed, is audited, and never reaches the
 * upstream when it fails): exact lookup → quarantine → argument schema → policy → approval →
 * budget → credentials → audit (write-ahead) → upstream → result mapping → redaction.
 *
 * @module
 */
import { randomUUID } from 'node:crypto'
import { context, trace, SpanStatusCode, type Context } from '@opentelemetry/api'
import {
  buildManifest,
  createSearchIndex,
  sanitizeIdentifier,
  generateDeclarations,
  renderDescription,
  typecheckCode,
} from '../bindings/index.js'
import type { Config } from '../config/index.js'
import { isErrorCode, isSluiceError } from '../errors.js'
import type { PolicySet } from '../policy/index.js'
import { BudgetTracker } from '../policy/index.js'
import type { SandboxCall, SandboxCallOutcome, SandboxPool } from '../sandbox/index.js'
import type { AuditLog } from '../audit/index.js'
import { hashArgs } from '../audit/index.js'
import type { GrantBroker, Redactor } from '../auth/index.js'
import {
  currentTraceId,
  getTracer,
  injectTraceContext,
  metrics,
  setSafeAttributes,
} from '../telemetry/index.js'
import type {
  CallRecord,
  CatalogTool,
  Decision,
  DefinitionHash,
  ExecutionError,
  ExecutionResult,
  Json,
  Principal,
} from '../types.js'
import type { UpstreamSet } from '../upstream/index.js'
import { Catalog, type CatalogEvent } from './catalog.js'
import { errorText, mapToolResult, sanitizeMessage, type UpstreamToolResult } from './result.js'
import { validateArgs, validateOutput } from './validate.js'

/** The human's answer to an `approve` decision. */
export type ApprovalAnswer = 'accept' | 'decline' | 'timeout' | 'unsupported'

/** Asks a human (through the MCP client) whether one inner call may run. */
export type ApprovalHandler = (request: {
  tool: string
  argsSummary: string
  ruleId: string
  reason: string
}) => Promise<ApprovalAnswer>

export interface ExecuteOptions {
  /** Aborts the execution (client cancellation) → `CANCELLED`. */
  signal?: AbortSignal
  /** The caller's bearer token, for token-exchange grants. Never enters the sandbox. */
  inboundToken?: string
  approve?: ApprovalHandler
  /** Progress for the client (e.g. "waiting for approval"); keeps progress-aware clients waiting. */
  onProgress?: (message: string) => void
}

export interface EngineDeps {
  config: Config
  pool: SandboxPool
  upstreams: UpstreamSet
  policy: PolicySet
  lock?: import('../registry/index.js').LockFile
  grants?: GrantBroker
  redactor?: Redactor
  audit?: AuditLog
  /** Operator log (stderr/pino); never receives secrets or arguments. */
  log?: (
    level: 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ) => void
}

export interface SearchResult {
  tool: string
  declaration: string
  score: number
}

export interface EngineHealth {
  ready: boolean
  upstreams: Record<
    string,
    { state: string; lastError?: string; tools: number; quarantined: number }
  >
  pool: { workers: number; ready: number; busy: number }
}

/** How long an execution waits for a stale server's re-listing before it runs without it. */
const STALE_WAIT_MS = 1_000

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

/** Longest argument summary shown to a human approver. */
const MAX_SUMMARY_CHARS = 400
/** Diagnostics attached to one failed execution. */
const MAX_DIAGNOSTICS = 10

/** Codes after which a type check of the model's code is likely to explain the failure. */
const TYPECHECK_ON = new Set([
  'RUNTIME_ERROR',
  'SYNTAX_ERROR',
  'UNKNOWN_TOOL',
  'INVALID_ARGS',
  'TOOL_ERROR',
])

export class Engine {
  readonly catalog: Catalog
  readonly #deps: EngineDeps
  readonly #views = new Map<
    string,
    {
      version: number
      tools: CatalogTool[]
      dts?: string
      description?: string
      search?: ReturnType<typeof createSearchIndex>
    }
  >()

  /** `tools.<ident>` → the config key (`my-db` is `tools.my_db`); the config rejects collisions. */
  readonly #serverByIdent = new Map<string, string>()

  constructor(deps: EngineDeps) {
    this.#deps = deps
    for (const name of Object.keys(deps.config.servers)) {
      this.#serverByIdent.set(name, name)
      const ident = sanitizeIdentifier(name)
      if (ident !== undefined) this.#serverByIdent.set(ident, name)
    }
    this.catalog = new Catalog({
      config: deps.config,
      upstreams: deps.upstreams,
      ...(deps.lock ? { lock: deps.lock } : {}),
      onEvent: (event) => this.#onCatalogEvent(event),
    })
  }

  /** Lists every upstream once; failures are recorded, never thrown (the gateway stays up). */
  async start(): Promise<void> {
    await this.catalog.refresh()
  }

  /** Re-lists one server after `tools/list_changed`. */
  async refresh(server?: string): Promise<void> {
    await this.catalog.refresh(server)
  }

  #onCatalogEvent(event: CatalogEvent): void {
    const log = this.#deps.log
    if (event.type === 'quarantined') {
      log?.('warn', `tool ${event.server}.${event.tool} changed since it was pinned: quarantined`, {
        pinnedHash: event.pinnedHash,
        liveHash: event.liveHash,
      })
      this.#deps.audit
        ?.append({
          type: 'tools.quarantined',
          tool: `${event.server}.${event.tool}`,
          toolHash: event.liveHash,
          code: 'QUARANTINED',
        })
        .catch((cause: unknown) => log?.('error', 'audit write failed', { error: String(cause) }))
    } else if (event.type === 'unpinned') {
      log?.(
        'warn',
        `tool ${event.server}.${event.tool} is not pinned: ${event.exposed ? 'exposed (allowUnpinned)' : 'not exposed'}`,
      )
    } else {
      log?.('warn', `cannot list tools of ${event.server}: ${sanitizeMessage(event.message)}`)
    }
  }

  #principalKey(principal: Principal): string {
    return JSON.stringify([
      principal.iss,
      principal.sub,
      principal.tenant ?? null,
      [...principal.scopes].sort(),
      principal.claims,
    ])
  }

  #view(principal: Principal) {
    const key = this.#principalKey(principal)
    const version = this.catalog.version
    let view = this.#views.get(key)
    if (!view || view.version !== version) {
      const tools = this.catalog
        .tools()
        .filter((tool) => this.#deps.policy.canList({ principal, tool: policyTool(tool) }))
      view = { version, tools }
      if (this.#views.size > 1000) this.#views.clear()
      this.#views.set(key, view)
    }
    return view
  }

  /** Tools this principal may see (policy-filtered; filtering is cosmetic, the dispatcher decides). */
  listTools(principal: Principal): CatalogTool[] {
    this.#retryStale()
    return this.#view(principal).tools
  }

  /** Servers that were down at start are listed again in the background (bounded rate). */
  #retryStale(): void {
    this.catalog.refreshStale().catch((cause: unknown) => {
      this.#deps.log?.('warn', 'catalogue refresh failed', { error: String(cause) })
    })
  }

  /**
   * Quarantined tools stay in the guest's manifest (with their pinned definition) so that a call
   * reaches the dispatcher and gets `QUARANTINED` rather than a misleading `UNKNOWN_TOOL`. They are
   * never listed or described.
   */
  #quarantinedBindings(principal: Principal) {
    const lock = this.#deps.lock
    if (!lock) return []
    return [...this.catalog.servers().values()]
      .flatMap((state) => state.quarantined)
      .flatMap((q) => {
        const ident = sanitizeIdentifier(q.name)
        const pin = lock.servers[q.server]?.tools[q.name]
        if (ident === undefined || !pin) return []
        const tool: CatalogTool = {
          server: q.server,
          name: q.name,
          ident,
          definition: pin.definition,
          hash: pin.hash as DefinitionHash,
        }
        return this.#deps.policy.canList({ principal, tool: policyTool(tool) })
          ? [bindingTool(tool)]
          : []
      })
  }

  /** TypeScript declarations of this principal's tools. */
  declarations(principal: Principal): string {
    const view = this.#view(principal)
    view.dts ??= generateDeclarations(view.tools.map(bindingTool)).dts
    return view.dts
  }

  /** The `execute_code` description: declarations when they fit the budget, else an index. */
  describeExecuteCode(principal: Principal): string {
    const view = this.#view(principal)
    view.description ??= renderDescription(view.tools.map(bindingTool), {
      budgetBytes: this.#deps.config.gateway.descriptionBudgetBytes,
    })
    return view.description
  }

  /** Ranks this principal's tools for a query and returns their declarations. */
  searchTools(principal: Principal, query: string, limit = 5): SearchResult[] {
    const view = this.#view(principal)
    view.search ??= createSearchIndex(view.tools.map(bindingTool))
    return view.search.search(query, limit).map((r) => ({
      tool: `${r.server}.${r.name}`,
      declaration: r.declaration,
      score: r.score,
    }))
  }

  health(): EngineHealth {
    const upstreamHealth = this.#deps.upstreams.health()
    const upstreams: EngineHealth['upstreams'] = {}
    for (const [name, state] of this.catalog.servers()) {
      const h = upstreamHealth[name]
      upstreams[name] = {
        state: h?.state ?? 'unknown',
        ...((h?.lastError ?? state.lastError)
          ? { lastError: sanitizeMessage(h?.lastError ?? state.lastError ?? '') }
          : {}),
        tools: state.tools.length,
        quarantined: state.quarantined.length,
      }
    }
    const pool = this.#deps.pool.stats()
    return {
      ready: pool.workers > 0,
      upstreams,
      pool: { workers: pool.workers, ready: pool.ready, busy: pool.busy },
    }
  }

  /**
   * Runs model code once. Never throws for anything the model or an upstream did: the result
   * carries `ok: false` and an error code instead.
   */
  async execute(
    principal: Principal,
    code: string,
    options: ExecuteOptions = {},
  ): Promise<ExecutionResult> {
    const tracer = getTracer()
    return tracer.startActiveSpan('execute_code', async (span) => {
      const started = performance.now()
      const executionId = randomUUID()
      setSafeAttributes(span, {
        'mcp.method.name': 'tools/call',
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'execute_code',
        'sluice.execution.id': executionId,
        'sluice.code.sha256': hashArgs(code),
        'sluice.code.bytes': Buffer.byteLength(code),
        // Hashed by the allowlist unless the operator chose otherwise.
        'enduser.id': principal.sub,
      })
      const parent = context.active()
      const calls: CallRecord[] = []
      // The caller's token may come back in an upstream error or a tool result: scrub it too.
      if (options.inboundToken) this.#deps.redactor?.add(options.inboundToken)
      try {
        const traceId = currentTraceId()
        await this.#deps.audit?.append({
          type: 'execution.start',
          executionId,
          principal: auditPrincipal(principal),
          codeHash: hashArgs(code),
          ...(traceId ? { traceId } : {}),
        })
        // A server that was down at start may be up now: give it a short chance to join.
        await Promise.race([this.catalog.refreshStale(), delay(STALE_WAIT_MS)])
        const tools = this.listTools(principal)
        const budget = new BudgetTracker()
        const outcome = await this.#deps.pool.execute({
          code,
          manifest: buildManifest([
            ...tools.map(bindingTool),
            ...this.#quarantinedBindings(principal),
          ]),
          limits: this.#deps.config.limits,
          ...(options.signal ? { signal: options.signal } : {}),
          onCall: (call, signal) =>
            context.with(parent, () =>
              this.#dispatch({
                principal,
                executionId,
                call,
                signal,
                options,
                calls,
                budget,
                parent,
              }),
            ),
        })
        const timings = outcome.timings as { queueMs: number; acquireMs?: number }
        metrics.sandboxAcquire.observe({}, (timings.acquireMs ?? timings.queueMs) / 1000)
        const redact = <T>(value: T): T =>
          this.#deps.redactor ? (this.#deps.redactor.redactJson(value as Json) as T) : value
        const result: ExecutionResult = {
          ok: outcome.ok,
          result: outcome.ok ? redact(outcome.result) : undefined,
          logs: redact(outcome.logs),
          calls,
        }
        if (outcome.warnings.length > 0) result.warnings = redact(outcome.warnings)
        if (!outcome.ok && outcome.error) {
          const error: ExecutionError = {
            code: outcome.error.code,
            message: this.#safe(outcome.error.message),
            ...(outcome.error.line !== undefined ? { line: outcome.error.line } : {}),
            ...(outcome.error.column !== undefined ? { column: outcome.error.column } : {}),
          }
          if (TYPECHECK_ON.has(error.code)) {
            const diagnostics = await this.#diagnose(principal, code)
            if (diagnostics.length > 0) error.diagnostics = diagnostics
          }
          result.error = error
        }
        setSafeAttributes(span, { 'sluice.call.count': calls.length })
        if (!result.ok) {
          span.setStatus({ code: SpanStatusCode.ERROR })
          setSafeAttributes(span, { 'error.type': result.error?.code ?? 'INTERNAL' })
        }
        await this.#deps.audit?.append({
          type: 'execution.end',
          executionId,
          principal: auditPrincipal(principal),
          status: result.ok ? 'ok' : 'error',
          ...(result.error ? { code: result.error.code } : {}),
          ...(traceId ? { traceId } : {}),
          callCount: calls.length,
          ms: Math.round(performance.now() - started),
        })
        metrics.executions.inc({ outcome: result.ok ? 'ok' : codeLabel(result.error?.code) })
        metrics.executionDuration.observe({}, (performance.now() - started) / 1000)
        return result
      } catch (cause) {
        // Only bugs and audit failures land here: fail closed with a code, never a host stack.
        this.#deps.log?.('error', 'execution failed inside the engine', {
          executionId,
          error: cause instanceof Error ? cause.message : String(cause),
        })
        span.setStatus({ code: SpanStatusCode.ERROR })
        setSafeAttributes(span, { 'error.type': 'INTERNAL' })
        metrics.executions.inc({ outcome: 'INTERNAL' })
        return {
          ok: false,
          result: undefined,
          logs: [],
          calls,
          error: {
            code: 'INTERNAL',
            message: `internal error in execution ${executionId}; see the gateway log`,
          },
        }
      } finally {
        span.end()
      }
    })
  }

  #safe(message: string): string {
    // Redact before sanitising: truncation could cut a secret so it no longer matches.
    const redacted = this.#deps.redactor ? this.#deps.redactor.redact(message) : message
    return sanitizeMessage(redacted)
  }

  async #diagnose(principal: Principal, code: string) {
    try {
      return await typecheckCode(code, this.declarations(principal), {
        maxDiagnostics: MAX_DIAGNOSTICS,
      })
    } catch (cause) {
      this.#deps.log?.('warn', 'type check of failed code did not complete', {
        error: cause instanceof Error ? cause.message : String(cause),
      })
      return []
    }
  }

  async #dispatch(ctx: {
    principal: Principal
    executionId: string
    call: SandboxCall
    signal: AbortSignal
    options: ExecuteOptions
    calls: CallRecord[]
    budget: BudgetTracker
    parent: Context
  }): Promise<SandboxCallOutcome> {
    const { principal, executionId, calls } = ctx
    const server = this.#serverByIdent.get(ctx.call.server) ?? ctx.call.server
    const call = { ...ctx.call, server }
    const label = `${call.server}.${call.tool}`
    const started = performance.now()
    const span = getTracer().startSpan(`execute_tool ${label}`, {}, ctx.parent)
    setSafeAttributes(span, {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': label,
      'gen_ai.tool.call.id': `${executionId}:${call.index}`,
      'sluice.server': call.server,
      'sluice.execution.id': executionId,
      'sluice.args.sha256': hashArgs(call.args),
      'sluice.args.bytes': call.argsBytes,
    })
    let decision: Decision | undefined
    let decisionLabel = 'none'
    const finish = (
      outcome: SandboxCallOutcome,
      extra: { resultBytes?: number } = {},
    ): SandboxCallOutcome => {
      const ms = Math.round((performance.now() - started) * 100) / 100
      const record: CallRecord = { tool: label, ok: outcome.ok, ms, decision: decisionLabel }
      if (!outcome.ok) record.code = outcome.code
      calls.push(record)
      if (decision) {
        setSafeAttributes(span, {
          'sluice.policy.decision': decision.effect,
          'sluice.policy.rule_id': decision.ruleId,
        })
      }
      if (extra.resultBytes !== undefined)
        setSafeAttributes(span, { 'sluice.result.bytes': extra.resultBytes })
      if (!outcome.ok) {
        span.setStatus({ code: SpanStatusCode.ERROR })
        setSafeAttributes(span, { 'error.type': outcome.code })
      }
      span.end()
      metrics.toolCalls.inc({
        server: call.server,
        tool: call.tool,
        outcome: outcome.ok ? 'ok' : codeLabel(outcome.code),
      })
      return outcome
    }
    const fail = (code: string, message: string) =>
      finish({ ok: false, code, message: this.#safe(message) })
    const traceId = currentTraceId(ctx.parent)
    const audit = (fields: Record<string, unknown>) =>
      this.#deps.audit?.append({
        executionId,
        ...(traceId ? { traceId } : {}),
        principal: auditPrincipal(principal),
        tool: label,
        argsHash: hashArgs(call.args),
        ...fields,
      } as Parameters<AuditLog['append']>[0])

    try {
      const found = this.catalog.lookup(call.server, call.tool)
      if (found.kind === 'unknown') {
        decisionLabel = 'UNKNOWN_TOOL'
        await audit({
          type: 'call.decision',
          decision: 'deny',
          ruleId: 'unknown-tool',
          code: 'UNKNOWN_TOOL',
        })
        return fail('UNKNOWN_TOOL', `tools.${call.server}.${call.tool} does not exist`)
      }
      if (found.kind === 'quarantined') {
        decisionLabel = 'QUARANTINED'
        await audit({
          type: 'call.decision',
          decision: 'deny',
          ruleId: 'quarantine',
          code: 'QUARANTINED',
          toolHash: found.info.liveHash,
        })
        return fail(
          'QUARANTINED',
          `${label} changed since it was pinned and is quarantined until it is approved again (sluice lock)`,
        )
      }
      const tool = found.tool
      setSafeAttributes(span, { 'sluice.tool.hash': tool.hash })

      const args = call.args
      if (args === null || typeof args !== 'object' || Array.isArray(args)) {
        decisionLabel = 'INVALID_ARGS'
        await audit({
          type: 'call.decision',
          decision: 'deny',
          ruleId: 'schema',
          code: 'INVALID_ARGS',
          toolHash: tool.hash,
        })
        return fail('INVALID_ARGS', `${label}: arguments must be an object`)
      }
      const checked = validateArgs(tool.hash, tool.definition.inputSchema, args)
      if (!checked.ok) {
        decisionLabel = 'INVALID_ARGS'
        await audit({
          type: 'call.decision',
          decision: 'deny',
          ruleId: 'schema',
          code: 'INVALID_ARGS',
          toolHash: tool.hash,
        })
        return fail('INVALID_ARGS', `${label}: ${checked.message}`)
      }

      const input = {
        principal,
        tool: policyTool(tool),
        args: args as Record<string, unknown>,
        execution: { id: executionId, callCount: call.index },
      }
      decision = this.#deps.policy.decide(input)
      decisionLabel = decision.effect
      metrics.policyDecisions.inc({ decision: decision.effect })
      if (decision.effect === 'deny') {
        await audit({
          type: 'call.decision',
          decision: 'deny',
          ruleId: decision.ruleId,
          code: 'TOOL_DENIED',
          toolHash: tool.hash,
        })
        return fail('TOOL_DENIED', `${label} is not allowed: ${decision.reason}`)
      }
      if (decision.effect === 'approve') {
        ctx.options.onProgress?.(
          `waiting for a human to approve ${label} (rule ${decision.ruleId})`,
        )
        const answer: ApprovalAnswer = ctx.options.approve
          ? await ctx.options.approve({
              tool: label,
              argsSummary: summarize(args, this.#deps.redactor),
              ruleId: decision.ruleId,
              reason: decision.reason,
            })
          : 'unsupported'
        metrics.approvals.inc({ outcome: answer })
        if (answer !== 'accept') {
          decisionLabel = 'APPROVAL_DENIED'
          await audit({
            type: 'call.decision',
            decision: 'approve',
            ruleId: decision.ruleId,
            status: answer,
            code: 'APPROVAL_DENIED',
            toolHash: tool.hash,
          })
          const why = {
            decline: 'the human approver declined it',
            timeout: 'no human answered in time',
            unsupported:
              'it needs human approval and this client cannot be asked (no elicitation support)',
          }[answer]
          return fail('APPROVAL_DENIED', `${label} was not run: ${why} (rule ${decision.ruleId})`)
        }
      }
      const budgets = this.#deps.policy.budgetsFor(input)
      const consumed = ctx.budget.tryConsume(budgets)
      if (!consumed.ok) {
        decisionLabel = 'BUDGET_EXCEEDED'
        await audit({
          type: 'call.decision',
          decision: 'deny',
          ruleId: consumed.budgetId,
          code: 'BUDGET_EXCEEDED',
          toolHash: tool.hash,
        })
        return fail(
          'BUDGET_EXCEEDED',
          `${label}: budget ${consumed.budgetId} allows no more calls in this execution`,
        )
      }

      const serverConfig = this.#deps.config.servers[call.server]
      let headers: Record<string, string> = {}
      if (serverConfig?.credentials && this.#deps.grants) {
        try {
          headers = await this.#deps.grants.headersFor(call.server, serverConfig.credentials, {
            principal,
            ...(ctx.options.inboundToken ? { inboundToken: ctx.options.inboundToken } : {}),
            signal: ctx.signal,
          })
        } catch (cause) {
          await audit({
            type: 'call.decision',
            decision: decision.effect,
            ruleId: decision.ruleId,
            code: 'TOOL_ERROR',
            status: 'grant-failed',
            toolHash: tool.hash,
          })
          return fail(
            'TOOL_ERROR',
            `${label}: credentials for server ${call.server} could not be obtained${isSluiceError(cause) ? `: ${cause.message}` : ''}`,
          )
        }
      }

      // Write-ahead: the decision is on disk before the upstream sees the call.
      await audit({
        type: 'call.decision',
        decision: decision.effect === 'approve' ? 'approved' : 'allow',
        ruleId: decision.ruleId,
        toolHash: tool.hash,
      })
      const upstream = this.#deps.upstreams.get(call.server)
      if (!upstream) return fail('TOOL_ERROR', `server ${call.server} is not configured`)
      let raw: UpstreamToolResult
      try {
        // W3C trace context goes to HTTP upstreams in headers and to every upstream in _meta;
        // the gateway generates it, nothing from the guest or the caller's baggage is forwarded.
        const carrier = injectTraceContext(trace.setSpan(ctx.parent, span))
        raw = (await context.with(trace.setSpan(ctx.parent, span), () =>
          upstream.callTool(tool.name, args, {
            signal: ctx.signal,
            timeoutMs: serverConfig?.timeoutMs ?? this.#deps.config.limits.callTimeoutMs,
            headers: { ...carrier, ...headers },
            meta: { ...carrier },
          }),
        )) as UpstreamToolResult
      } catch (cause) {
        const code = isSluiceError(cause) ? cause.code : 'TOOL_ERROR'
        const message = cause instanceof Error ? cause.message : String(cause)
        await audit({
          type: 'call.result',
          status: 'error',
          code,
          toolHash: tool.hash,
          ms: Math.round(performance.now() - started),
        })
        return fail(code, `${label}: ${message}`)
      }
      if (raw.isError) {
        await audit({
          type: 'call.result',
          status: 'error',
          code: 'TOOL_ERROR',
          toolHash: tool.hash,
          ms: Math.round(performance.now() - started),
        })
        return fail('TOOL_ERROR', `${label}: ${errorText(raw)}`)
      }
      const outputSchema = tool.definition.outputSchema
      if (outputSchema && raw.structuredContent !== undefined) {
        const out = validateOutput(tool.hash, outputSchema, raw.structuredContent)
        if (!out.ok) {
          await audit({
            type: 'call.result',
            status: 'error',
            code: 'TOOL_ERROR',
            toolHash: tool.hash,
            ms: Math.round(performance.now() - started),
          })
          return fail(
            'TOOL_ERROR',
            `${label}: the result does not match the pinned output schema (${out.message})`,
          )
        }
      }
      let value = mapToolResult(raw)
      if (this.#deps.redactor) value = this.#deps.redactor.redactJson(value)
      await audit({
        type: 'call.result',
        status: 'ok',
        toolHash: tool.hash,
        ms: Math.round(performance.now() - started),
      })
      return finish(
        { ok: true, value },
        { resultBytes: Buffer.byteLength(JSON.stringify(value) ?? '') },
      )
    } catch (cause) {
      this.#deps.log?.('error', 'dispatcher failure', {
        tool: label,
        error: cause instanceof Error ? cause.message : String(cause),
      })
      return fail('INTERNAL', `${label}: internal error`)
    }
  }

  /** Direct mode: one upstream tool proxied under the same checks (no sandbox). */
  async callDirect(
    principal: Principal,
    tool: CatalogTool,
    args: unknown,
    options: ExecuteOptions = {},
  ): Promise<{ content: unknown[]; structuredContent?: unknown; isError?: boolean }> {
    const calls: CallRecord[] = []
    const executionId = randomUUID()
    if (options.inboundToken) this.#deps.redactor?.add(options.inboundToken)
    const outcome = await this.#dispatch({
      principal,
      executionId,
      call: {
        server: tool.server,
        tool: tool.name,
        args: (args ?? {}) as Json,
        argsBytes: Buffer.byteLength(JSON.stringify(args ?? {})),
        index: 0,
      },
      signal: options.signal ?? new AbortController().signal,
      options,
      calls,
      budget: new BudgetTracker(),
      parent: context.active(),
    })
    if (!outcome.ok) {
      return {
        content: [{ type: 'text', text: `${outcome.code}: ${outcome.message}` }],
        isError: true,
      }
    }
    const value = outcome.value
    return {
      content: [{ type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value) }],
      ...(value !== null && typeof value === 'object' && !Array.isArray(value)
        ? { structuredContent: value }
        : {}),
    }
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([
      this.#deps.upstreams.close(),
      this.#deps.pool.close(),
    ])
    for (const r of results) {
      if (r.status === 'rejected')
        this.#deps.log?.('warn', 'error while closing', { error: String(r.reason) })
    }
  }
}

function policyTool(tool: CatalogTool) {
  return {
    server: tool.server,
    name: tool.name,
    annotations: (tool.definition.annotations ?? {}) as Record<string, unknown>,
    hash: tool.hash,
  }
}

function bindingTool(tool: CatalogTool) {
  return { server: tool.server, name: tool.name, ident: tool.ident, definition: tool.definition }
}

function auditPrincipal(principal: Principal) {
  return {
    sub: principal.sub,
    iss: principal.iss,
    ...(principal.tenant ? { tenant: principal.tenant } : {}),
  }
}

/** A short, shape-only summary of arguments for a human approver (values truncated). */
function summarize(args: object, redactor?: Redactor): string {
  const raw = JSON.stringify(args)
  const text = redactor ? redactor.redact(raw) : raw
  return text.length > MAX_SUMMARY_CHARS ? `${text.slice(0, MAX_SUMMARY_CHARS - 1)}…` : text
}

/** An error code as a metric label: one of sluice's codes, never free text from a guest or upstream. */
function codeLabel(code: string | undefined): string {
  return isErrorCode(code) ? code : 'INTERNAL'
}
