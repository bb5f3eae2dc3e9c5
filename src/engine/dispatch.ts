/**
 * The dispatcher behind every inner tool call, as a pipeline of named steps:
 *
 *   find → turn → resolve → check → decide → approve → budget → grant → call → guard → record
 *
 * `turn` waits until every call the guest issued before this one has been decided, so that
 * `execution.labels` holds exactly the labels of the earlier authorised calls (labels.ts). `resolve`
 * (PII tokens back to values, adding the labels they carry) runs while the call holds its turn.
 *
 * Each step either lets the call go on or refuses it with a {@link Refusal}: its code, its
 * message for the guest, and the audit record that says why. A refusal is turned into an
 * outcome, an audit record, a span status and a metric in exactly one place ({@link refuse}),
 * so no step can forget one of them, and none reaches the upstream after a refusal. Every step
 * fails closed: an exception in any of them is `INTERNAL`.
 *
 * @module
 */
import { trace, SpanStatusCode, type Context, type Span } from '@opentelemetry/api'
import type { AppendOptions, AuditLog } from '../audit/index.js'
import { hashArgs } from '../audit/index.js'
import type { GrantBroker, Redactor } from '../auth/index.js'
import { toolLabels, type Config } from '../config/index.js'
import { isErrorCode, isSluiceError } from '../errors.js'
import type { PolicySet } from '../policy/index.js'
import type { BudgetTracker } from '../policy/index.js'
import type { SandboxCall, SandboxCallOutcome } from '../sandbox/index.js'
import {
  currentTraceId,
  getTracer,
  injectTraceContext,
  metrics,
  setSafeAttributes,
} from '../telemetry/index.js'
import type { CallRecord, CatalogTool, Decision, Json, Principal } from '../types.js'
import type { UpstreamProgress, UpstreamSet } from '../upstream/index.js'
import { addCounts, countEntries, type PiiCounts, type PiiGuard } from '../guard/index.js'
import { sanitizeIdentifier } from '../bindings/index.js'
import type { LockFile } from '../registry/index.js'
import type { Catalog, Lookup } from './catalog.js'
import type { LabelLedger } from './labels.js'
import { errorText, mapToolResult, type UpstreamToolResult } from './result.js'
import { serverPath, toolPath, unknownToolMessage, type VisibleTool } from './suggest.js'
import { argumentShape, undeclaredFields, validateArgs, validateOutput } from './validate.js'

/**
 * The human's answer to an `approve` decision; `suspended` when nobody is asked in this request
 * because the execution stops and resumes once the client answers (durable.ts).
 */
export type ApprovalAnswer = 'accept' | 'decline' | 'timeout' | 'unsupported' | 'suspended'

/** One approval question. */
export interface ApprovalRequest {
  /** `server.tool`. */
  tool: string
  /** The redacted, shortened arguments, for a human to read. */
  argsSummary: string
  ruleId: string
  reason: string
  /** The call's 0-based index in its execution. */
  index: number
}

/** Asks a human (through the MCP client) whether one inner call may run. */
export type ApprovalHandler = (request: ApprovalRequest) => Promise<ApprovalAnswer>

/** What the dispatcher needs of the engine's dependencies. */
export interface DispatchDeps {
  config: Config
  catalog: Catalog
  upstreams: UpstreamSet
  policy: PolicySet
  /** The pins, for the listing verdict of a quarantined tool. */
  lock?: LockFile
  grants?: GrantBroker
  redactor?: Redactor
  audit?: AuditLog
  /** Operator log (stderr/pino); never receives secrets or arguments. */
  log?: (
    level: 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ) => void
  /** Makes a message safe for the guest (redaction, then sanitising). */
  safe(message: string): string
  /** PII tokenisation (`guardrails.pii`), when configured and not `off`. */
  pii?: PiiGuard
}

/** The guardrails' state of one execution, shared by its calls. */
export interface GuardState {
  /** The vault scope: the principal and its session. */
  readonly scope: string
  /** PII found on the guest boundary and tokens resolved, per kind. */
  readonly counts: PiiCounts
  /** Set once an upstream returned data: spotlighting fences what the execution returns. */
  toolData: boolean
}

/** One inner call as the engine hands it over. */
export interface CallRequest {
  principal: Principal
  executionId: string
  call: SandboxCall
  signal: AbortSignal
  calls: CallRecord[]
  budget: BudgetTracker
  /** The execution's data labels and the order its calls are decided in; one per execution. */
  ledger: LabelLedger
  parent: Context
  inboundToken?: string
  approve?: ApprovalHandler
  onProgress?: (message: string) => void
  /** Each progress notification the upstream sends for this call, its message made safe. */
  onUpstreamProgress?: (tool: string, progress: UpstreamProgress) => void
  /** Collects what passed but was probably not meant (fields the tool does not declare). */
  notes?: CallNote[]
  /** The tools this caller can see, when the caller has listed them already (for suggestions). */
  visible?: readonly VisibleTool[]
  guard?: GuardState
}

/** A call that ran, with argument fields its schema does not declare (the upstream ignores them). */
export interface CallNote {
  tool: CatalogTool
  fields: string[]
  /** The fields the schema declares. */
  known: string[]
}

type AuditFields = Record<string, unknown>

/** Why a call does not go on: the guest's code and message, and the audit record. */
interface Refusal {
  code: string
  message: string
  /** How `calls[].decision` shows it (a rule effect or the code). */
  decision: string
  audit?: AuditFields
}

/** The state of one call as it moves through the steps. */
interface Flight {
  readonly req: CallRequest
  readonly label: string
  readonly span: Span
  readonly started: number
  /** Digest of the arguments as the guest sent them: the span's and every record's. */
  readonly argsHash: string
  tool?: CatalogTool
  /** The tool's labels plus its server's, once the lookup found the tool. */
  labels?: readonly string[]
  args?: Record<string, unknown>
  /** `execution.labels` as this call's decision saw them (its budgets see the same). */
  executionLabels?: readonly string[]
  decision?: Decision
  headers: Record<string, string>
  raw?: UpstreamToolResult
  value?: Json
  /** The arguments with the caller's PII tokens resolved (resolveFor tools only). */
  resolved?: { args: Record<string, unknown>; counts: PiiCounts; labels: string[] }
  /** PII tokenised in the result before the guest saw it (`boundary: guest`). */
  guestCounts?: PiiCounts
}

type Step = (flight: Flight) => Promise<Refusal | undefined> | Refusal | undefined

/** The metric label of a server or tool name that matches nothing configured. */
const UNKNOWN = '<unknown>'

/** Longest argument summary shown to a human approver. */
const MAX_SUMMARY_CHARS = 400

/** Listing verdicts a dispatcher keeps at most (then it starts again from empty). */
export const LIST_VERDICT_CACHE_MAX = 10_000

export class Dispatcher {
  readonly #deps: DispatchDeps
  /** The pipeline, in order; `record` ends every call that was not refused. */
  readonly #steps: readonly Step[]
  /**
   * Listing verdicts by principal and exact tool definition. A dispatcher belongs to one config
   * generation (its policy, config and lock never change), so a reload starts from empty; the
   * key holds every principal field policy can read and the tool's definition hash, so another
   * principal or a changed tool is evaluated afresh. Kept only when the policy's listing does
   * not read the clock.
   */
  readonly #listVerdicts = new Map<string, { ruleId?: string } | null>()
  /** Each principal's part of that key, made once per principal object (one per execution). */
  readonly #principalKeys = new WeakMap<Principal, string>()

  constructor(deps: DispatchDeps) {
    this.#deps = deps
    this.#steps = [
      (f) => this.#find(f),
      (f) => this.#turn(f),
      (f) => this.#resolve(f),
      (f) => this.#check(f),
      (f) => this.#decide(f),
      (f) => this.#approve(f),
      (f) => this.#budget(f),
      (f) => this.#grant(f),
      (f) => this.#call(f),
      (f) => this.#guard(f),
    ]
  }

  async dispatch(req: CallRequest): Promise<SandboxCallOutcome> {
    const label = `${req.call.server}.${req.call.tool}`
    const span = getTracer().startSpan(`execute_tool ${label}`, {}, req.parent)
    const argsHash = hashArgs(req.call.args)
    setSafeAttributes(span, {
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': label,
      'gen_ai.tool.call.id': `${req.executionId}:${req.call.index}`,
      'sluice.server': req.call.server,
      'sluice.execution.id': req.executionId,
      'sluice.args.sha256': argsHash,
      'sluice.args.bytes': req.call.argsBytes,
    })
    const flight: Flight = { req, label, span, started: performance.now(), argsHash, headers: {} }
    try {
      for (const step of this.#steps) {
        const refusal = await step(flight)
        if (refusal !== undefined) return await this.#refuse(flight, refusal)
      }
      return await this.#record(flight)
    } catch (cause) {
      this.#deps.log?.('error', 'dispatcher failure', {
        tool: label,
        error: cause instanceof Error ? cause.message : String(cause),
      })
      const message = this.#deps.safe(`${label}: internal error`)
      return this.#finish(flight, { ok: false, code: 'INTERNAL', message }, 'INTERNAL')
    } finally {
      // Whatever happened to this call, the calls issued after it must not wait for it.
      req.ledger.pass(req.call.index)
    }
  }

  // ── the steps ─────────────────────────────────────────────────────────────────────────────

  /**
   * The exact tool exists and this caller may see it, is not quarantined, and the arguments fit
   * its pinned schema. A tool policy hides from the caller is `TOOL_DENIED` before its schema is
   * looked at, so the answer carries nothing of its definition; a name that matches no tool is
   * `UNKNOWN_TOOL`, with a suggestion among the tools the caller can see.
   */
  #find(f: Flight): Refusal | undefined {
    const { call } = f.req
    const found = this.#lookup(call.server, call.tool)
    if (found.kind !== 'unknown') {
      const name = found.kind === 'tool' ? found.tool.name : found.info.name
      f.labels = toolLabels(this.#deps.config, call.server, name)
    }
    if (found.kind === 'unknown') {
      return deny(
        'UNKNOWN_TOOL',
        unknownToolMessage(call.server, call.tool, f.req.visible ?? this.#visible(f.req.principal)),
        'unknown-tool',
      )
    }
    const hiddenBy = this.#hiddenBy(f.req.principal, found)
    if (hiddenBy !== undefined) {
      const name = found.kind === 'tool' ? found.tool.name : found.info.name
      const path = `${serverPath(call.server)}.${sanitizeIdentifier(name) ?? call.tool}`
      return deny(
        'TOOL_DENIED',
        `${path} exists but is not available to this caller (policy: ${hiddenBy.ruleId === undefined ? 'no rule allows it' : `rule "${hiddenBy.ruleId}"`})`,
        hiddenBy.ruleId ?? 'default-deny',
        found.kind === 'tool' ? found.tool.hash : found.info.liveHash,
        'deny',
      )
    }
    if (found.kind === 'quarantined') {
      return {
        ...deny(
          'QUARANTINED',
          `${f.label} changed since it was pinned and is quarantined until it is approved again (sluice lock)`,
          'quarantine',
        ),
        audit: {
          type: 'call.decision',
          decision: 'deny',
          ruleId: 'quarantine',
          code: 'QUARANTINED',
          toolHash: found.info.liveHash,
        },
      }
    }
    f.tool = found.tool
    setSafeAttributes(f.span, { 'sluice.tool.hash': found.tool.hash })
    return undefined
  }

  /**
   * PII tokens in the arguments of a `resolveFor` tool become this caller's values again, before
   * the schema and the policy see them: argument rules judge the real value, and a token cannot
   * smuggle one past them. The audit keeps the arguments as the guest sent them.
   */
  async #resolve(f: Flight): Promise<Refusal | undefined> {
    const pii = this.#deps.pii
    const { args } = f.req.call
    const tool = f.tool!
    const scope = f.req.guard?.scope
    if (
      pii === undefined ||
      scope === undefined ||
      !pii.resolves(tool.server, tool.name, tool.ident)
    )
      return undefined
    if (args === null || typeof args !== 'object' || Array.isArray(args)) return undefined
    try {
      const resolved = await pii.resolveArgs(args as Record<string, unknown>, scope)
      if (Object.keys(resolved.counts).length === 0) return undefined
      f.resolved = resolved
      // A token brings the labels of the call that produced it: no laundering through a token.
      if (resolved.labels.length > 0) f.req.ledger.add(resolved.labels)
      addCounts(f.req.guard!.counts, resolved.counts)
      for (const [kind, n] of countEntries(resolved.counts)) metrics.piiResolved.inc({ kind }, n)
      return undefined
    } catch (cause) {
      return deny(
        isSluiceError(cause) && cause.code === 'STORE_UNAVAILABLE' ? 'OVERLOADED' : 'TOOL_ERROR',
        `${f.label}: the PII tokens in its arguments could not be resolved${isSluiceError(cause) ? `: ${cause.message}` : ''}`,
        'pii-resolve',
        tool.hash,
      )
    }
  }

  /** The arguments (resolved) fit the tool's pinned schema. */
  #check(f: Flight): Refusal | undefined {
    const tool = f.tool!
    const args = f.resolved?.args ?? f.req.call.args
    const schema = tool.definition.inputSchema
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      const got = args === null ? 'null' : Array.isArray(args) ? 'an array' : `a ${typeof args}`
      return deny(
        'INVALID_ARGS',
        `${f.label}: the arguments are one object, not ${got}: call ${toolPath(tool)}(${argumentShape(schema)})`,
        'schema',
        tool.hash,
      )
    }
    const checked = validateArgs(tool.hash, schema, args)
    if (!checked.ok)
      return deny('INVALID_ARGS', `${f.label}: ${checked.message}`, 'schema', tool.hash)
    const undeclared = undeclaredFields(schema, args)
    if (undeclared.length > 0) {
      f.req.notes?.push({
        tool: tool,
        fields: undeclared,
        known: Object.keys((schema.properties ?? {}) as object),
      })
    }
    f.args = args as Record<string, unknown>
    return undefined
  }

  /**
   * The catalogue's exact lookup, then the tool whose identifier is that name: `get_sum` is how
   * code spells `get-sum`, and the guest only sends it when the tool is not in its bindings.
   */
  #lookup(server: string, name: string): Lookup {
    const found = this.#deps.catalog.lookup(server, name)
    if (found.kind !== 'unknown') return found
    const alias = this.#deps.catalog.tools().find((t) => t.server === server && t.ident === name)
    return alias === undefined ? found : { kind: 'tool', tool: alias }
  }

  /** The listing verdict when policy hides the tool from this caller, else undefined. */
  #hiddenBy(
    principal: Principal,
    found: Exclude<Lookup, { kind: 'unknown' }>,
  ): { ruleId?: string } | undefined {
    let tool: CatalogTool | undefined
    if (found.kind === 'tool') tool = found.tool
    else {
      // A quarantined tool is listed by its pinned definition (engine.ts, #quarantinedBindings).
      const pin = this.#deps.lock?.servers[found.info.server]?.tools[found.info.name]
      if (pin === undefined) return {}
      tool = {
        server: found.info.server,
        name: found.info.name,
        ident: found.info.name,
        definition: pin.definition,
        hash: pin.hash as CatalogTool['hash'],
      }
    }
    const cacheable = this.#deps.policy.listingIsTimeless === true
    const key = cacheable ? this.#listKey(principal, tool) : undefined
    if (key !== undefined) {
      const kept = this.#listVerdicts.get(key)
      if (kept !== undefined) return kept ?? undefined
    }
    const verdict = this.#deps.policy.listVerdict({
      principal,
      tool: policyTool(tool, this.#deps.config),
    })
    const hidden = verdict.listed
      ? undefined
      : verdict.ruleId === undefined
        ? {}
        : { ruleId: verdict.ruleId }
    if (key !== undefined) {
      if (this.#listVerdicts.size >= LIST_VERDICT_CACHE_MAX) this.#listVerdicts.clear()
      this.#listVerdicts.set(key, hidden ?? null)
    }
    return hidden
  }

  /**
   * Everything the listing verdict reads: the principal as policy sees it (and how it was
   * established), and the tool by server, name, definition hash and risk. Labels and the
   * generation's config are fixed for this dispatcher.
   */
  #listKey(principal: Principal, tool: CatalogTool): string {
    let who = this.#principalKeys.get(principal)
    if (who === undefined) {
      who = JSON.stringify([
        principal.iss,
        principal.sub,
        principal.tenant ?? null,
        principal.scopes,
        principal.claims,
        principal.authMethod,
      ])
      this.#principalKeys.set(principal, who)
    }
    return JSON.stringify([who, tool.server, tool.name, tool.hash, tool.risk ?? null])
  }

  /** The tools this caller can see (for suggestions; only on the unknown-name path). */
  #visible(principal: Principal): VisibleTool[] {
    return this.#deps.catalog
      .tools()
      .filter((tool) =>
        this.#deps.policy.canList({ principal, tool: policyTool(tool, this.#deps.config) }),
      )
  }

  /** Waits until every call issued before this one has been decided (labels.ts). */
  async #turn(f: Flight): Promise<Refusal | undefined> {
    try {
      await f.req.ledger.turn(f.req.call.index, f.req.signal)
      return undefined
    } catch (cause) {
      if (!isSluiceError(cause, 'CANCELLED')) throw cause
      return {
        code: 'CANCELLED',
        message: `${f.label} was not run: the execution ended before it was decided`,
        decision: 'CANCELLED',
      }
    }
  }

  /**
   * CEL policy over principal, tool, arguments and the execution's labels: deny wins, nothing
   * matching denies. An allow, or an approve (when the human is asked, whatever the answer),
   * adds the tool's labels to the execution before the next call is decided.
   */
  #decide(f: Flight): Refusal | undefined {
    const { ledger, call } = f.req
    f.executionLabels = ledger.labels()
    const decision = this.#deps.policy.decide(this.#policyInput(f))
    f.decision = decision
    metrics.policyDecisions.inc({ decision: decision.effect })
    if (decision.effect !== 'deny') {
      ledger.authorise(call.index, f.labels ?? [])
      return undefined
    }
    ledger.pass(call.index)
    return {
      code: 'TOOL_DENIED',
      message: `${f.label} is not allowed: ${decision.reason}`,
      decision: 'deny',
      audit: {
        type: 'call.decision',
        decision: 'deny',
        ruleId: decision.ruleId,
        code: 'TOOL_DENIED',
        toolHash: f.tool!.hash,
      },
    }
  }

  /** An `approve` decision asks a human; anything but a yes refuses. */
  async #approve(f: Flight): Promise<Refusal | undefined> {
    const decision = f.decision!
    if (decision.effect !== 'approve') return undefined
    const { req } = f
    req.onProgress?.(`waiting for a human to approve ${f.label} (rule ${decision.ruleId})`)
    const answer: ApprovalAnswer = req.approve
      ? await req.approve({
          tool: f.label,
          argsSummary: summarize(f.args!, this.#deps.redactor),
          ruleId: decision.ruleId,
          reason: decision.reason,
          index: req.call.index,
        })
      : 'unsupported'
    metrics.approvals.inc({ outcome: answer })
    if (answer === 'accept') return undefined
    const why = {
      decline: 'the human approver declined it',
      timeout: `no human answered within gateway.approvalTimeoutMs (${this.#deps.config.gateway.approvalTimeoutMs} ms)`,
      unsupported:
        'it needs human approval and this client cannot be asked (no elicitation support)',
      suspended: 'the execution stopped to ask a human',
    }[answer]
    return {
      code: 'APPROVAL_DENIED',
      message: `${f.label} was not run: ${why} (rule ${decision.ruleId})`,
      decision: 'APPROVAL_DENIED',
      audit: {
        type: 'call.decision',
        decision: 'approve',
        ruleId: decision.ruleId,
        status: answer,
        code: 'APPROVAL_DENIED',
        toolHash: f.tool!.hash,
      },
    }
  }

  /** Per-execution budgets of the policy. */
  #budget(f: Flight): Refusal | undefined {
    const consumed = f.req.budget.tryConsume(this.#deps.policy.budgetsFor(this.#policyInput(f)))
    if (consumed.ok) return undefined
    return {
      code: 'BUDGET_EXCEEDED',
      message: `${f.label}: budget ${consumed.budgetId} allows no more calls in this execution`,
      decision: 'BUDGET_EXCEEDED',
      audit: {
        type: 'call.decision',
        decision: 'deny',
        ruleId: consumed.budgetId,
        code: 'BUDGET_EXCEEDED',
        toolHash: f.tool!.hash,
      },
    }
  }

  /** The server's credential grant, obtained for this principal; never the caller's token. */
  async #grant(f: Flight): Promise<Refusal | undefined> {
    const { call } = f.req
    const credentials = this.#deps.config.servers[call.server]?.credentials
    if (credentials === undefined || this.#deps.grants === undefined) return undefined
    try {
      f.headers = await this.#deps.grants.headersFor(call.server, credentials, {
        principal: f.req.principal,
        ...(f.req.inboundToken ? { inboundToken: f.req.inboundToken } : {}),
        signal: f.req.signal,
      })
      return undefined
    } catch (cause) {
      const decision = f.decision!
      return {
        code: 'TOOL_ERROR',
        message: `${f.label}: credentials for server ${call.server} could not be obtained${isSluiceError(cause) ? `: ${cause.message}` : ''}`,
        decision: decision.effect,
        audit: {
          type: 'call.decision',
          decision: decision.effect,
          ruleId: decision.ruleId,
          code: 'TOOL_ERROR',
          status: 'grant-failed',
          toolHash: f.tool!.hash,
        },
      }
    }
  }

  /** Write-ahead audit of the allow, then the upstream call itself. */
  async #call(f: Flight): Promise<Refusal | undefined> {
    const { req } = f
    const decision = f.decision!
    const tool = f.tool!
    // Write-ahead: the decision is on disk before the upstream sees the call.
    await this.#audit(f, {
      type: 'call.decision',
      decision: decision.effect === 'approve' ? 'approved' : 'allow',
      ruleId: decision.ruleId,
      toolHash: tool.hash,
      ...(f.resolved === undefined ? {} : { pii: f.resolved.counts }),
    })
    const upstream = this.#deps.upstreams.get(req.call.server)
    if (!upstream)
      return {
        code: 'TOOL_ERROR',
        message: `server ${req.call.server} is not configured`,
        decision: decision.effect,
      }
    const serverConfig = this.#deps.config.servers[req.call.server]
    try {
      // W3C trace context goes to HTTP upstreams in headers and to every upstream in _meta;
      // the gateway generates it, nothing from the guest or the caller's baggage is forwarded.
      const spanContext = trace.setSpan(req.parent, f.span)
      const carrier = injectTraceContext(spanContext)
      f.raw = (await upstream.callTool(tool.name, f.args!, {
        signal: req.signal,
        timeoutMs: serverConfig?.timeoutMs ?? this.#deps.config.limits.callTimeoutMs,
        headers: { ...carrier, ...f.headers },
        meta: { ...carrier },
        // Always asked for: progress keeps a long call alive (up to limits.callMaxTotalMs)
        // whether or not this client listens to it.
        maxTotalMs: this.#deps.config.limits.callMaxTotalMs,
        onProgress: ({ message, ...p }) =>
          req.onUpstreamProgress?.(f.label, {
            ...p,
            ...(message === undefined ? {} : { message: this.#deps.safe(message) }),
          }),
      })) as UpstreamToolResult
      return undefined
    } catch (cause) {
      const code = isSluiceError(cause) ? cause.code : 'TOOL_ERROR'
      return this.#upstreamFailure(
        f,
        code,
        `${f.label}: ${cause instanceof Error ? cause.message : String(cause)}`,
      )
    }
  }

  /**
   * What comes back: an upstream error, a result off its pinned output schema, redaction, and
   * with `boundary: guest` PII tokenised before the guest sees it.
   */
  async #guard(f: Flight): Promise<Refusal | undefined> {
    const raw = f.raw!
    const tool = f.tool!
    if (raw.isError) return this.#upstreamFailure(f, 'TOOL_ERROR', `${f.label}: ${errorText(raw)}`)
    const outputSchema = tool.definition.outputSchema
    if (outputSchema && raw.structuredContent !== undefined) {
      const out = validateOutput(tool.hash, outputSchema, raw.structuredContent)
      if (!out.ok) {
        // The schema's complaint may quote the upstream's values.
        return this.#upstreamFailure(
          f,
          'TOOL_ERROR',
          `${f.label}: the result does not match the pinned output schema (${out.message})`,
        )
      }
    }
    const mapped = mapToolResult(raw)
    f.value = await this.#toolData(
      f,
      this.#deps.redactor ? this.#deps.redactor.redactJson(mapped) : mapped,
    )
    return undefined
  }

  /**
   * What an upstream said reaches the guest as tool data: it marks the execution as having read
   * tool data (spotlight), and with `boundary: guest` its PII is tokenised first.
   */
  async #toolData<T extends Json | undefined>(f: Flight, value: T): Promise<T> {
    const guard = f.req.guard
    if (guard === undefined) return value
    guard.toolData = true
    const { pii } = this.#deps
    if (pii?.options.boundary !== 'guest') return value
    const done = await pii.protect(value, guard.scope, f.labels ?? [])
    if (Object.keys(done.counts).length > 0) {
      f.guestCounts = done.counts
      addCounts(guard.counts, done.counts)
      for (const [kind, n] of countEntries(done.counts))
        metrics.piiDetections.inc({ kind, boundary: 'guest' }, n)
    }
    return done.value as T
  }

  /** An upstream's error (its `isError` text, or what failed in the call) as tool data. */
  async #upstreamFailure(f: Flight, code: string, message: string): Promise<Refusal> {
    return this.#failedResult(f, code, await this.#toolData(f, message))
  }

  /** The call succeeded: its result record, then the value to the guest. */
  async #record(f: Flight): Promise<SandboxCallOutcome> {
    // Written, not synced: only the guest sees the value, and whatever it does next that
    // leaves the sandbox (a call, the answer) is preceded by a durable record whose sync
    // covers this one.
    await this.#audit(
      f,
      {
        type: 'call.result',
        status: 'ok',
        toolHash: f.tool!.hash,
        ms: this.#elapsed(f),
        ...(f.guestCounts === undefined ? {} : { pii: f.guestCounts }),
      },
      { durable: false },
    )
    const value = f.value as Json
    return this.#finish(
      f,
      { ok: true, value },
      f.decision!.effect,
      Buffer.byteLength(JSON.stringify(value) ?? ''),
    )
  }

  // ── one place for refusals, audit and the end of a call ───────────────────────────────────

  async #refuse(f: Flight, refusal: Refusal): Promise<SandboxCallOutcome> {
    if (refusal.audit !== undefined) await this.#audit(f, refusal.audit)
    return this.#finish(
      f,
      { ok: false, code: refusal.code, message: this.#deps.safe(refusal.message) },
      refusal.decision,
    )
  }

  /** A refusal after the upstream was asked: audited as a failed result. */
  #failedResult(f: Flight, code: string, message: string): Refusal {
    return {
      code,
      message,
      decision: f.decision!.effect,
      audit: {
        type: 'call.result',
        status: 'error',
        code,
        toolHash: f.tool!.hash,
        ms: this.#elapsed(f),
        ...(f.guestCounts === undefined ? {} : { pii: f.guestCounts }),
      },
    }
  }

  #finish(
    f: Flight,
    outcome: SandboxCallOutcome,
    decision: string,
    resultBytes?: number,
  ): SandboxCallOutcome {
    const { call, calls } = f.req
    const record: CallRecord = {
      tool: f.label,
      ok: outcome.ok,
      ms: Math.round((performance.now() - f.started) * 100) / 100,
      decision,
    }
    if (!outcome.ok) record.code = outcome.code
    calls.push(record)
    if (f.decision) {
      setSafeAttributes(f.span, {
        'sluice.policy.decision': f.decision.effect,
        'sluice.policy.rule_id': f.decision.ruleId,
      })
    }
    if (resultBytes !== undefined) setSafeAttributes(f.span, { 'sluice.result.bytes': resultBytes })
    if (!outcome.ok) {
      f.span.setStatus({ code: SpanStatusCode.ERROR })
      setSafeAttributes(f.span, { 'error.type': outcome.code })
    }
    f.span.end()
    // A name that matches no tool is the guest's own text: not a label (unbounded cardinality).
    const unknown = !outcome.ok && outcome.code === 'UNKNOWN_TOOL'
    metrics.toolCalls.inc({
      server:
        unknown && this.#deps.config.servers[call.server] === undefined ? UNKNOWN : call.server,
      tool: unknown ? UNKNOWN : call.tool,
      outcome: outcome.ok ? 'ok' : isErrorCode(outcome.code) ? outcome.code : 'INTERNAL',
    })
    return outcome
  }

  #audit(f: Flight, fields: AuditFields, options?: AppendOptions): Promise<unknown> | undefined {
    const { req } = f
    const traceId = currentTraceId(req.parent)
    // The decision records name the tool's labels (never values), so an auditor can follow
    // which data an execution touched before a call was allowed or denied.
    const labels =
      fields.type === 'call.decision' && f.labels !== undefined && f.labels.length > 0
        ? { labels: [...f.labels] }
        : {}
    return this.#deps.audit?.append(
      {
        executionId: req.executionId,
        ...(traceId ? { traceId } : {}),
        principal: auditPrincipal(req.principal),
        tool: f.label,
        argsHash: f.argsHash,
        ...fields,
        ...labels,
      } as Parameters<AuditLog['append']>[0],
      options,
    )
  }

  #policyInput(f: Flight) {
    return {
      principal: f.req.principal,
      tool: policyTool(f.tool!, this.#deps.config),
      args: f.args!,
      execution: {
        id: f.req.executionId,
        callCount: f.req.call.index,
        labels: f.executionLabels ?? [],
      },
    }
  }

  #elapsed(f: Flight): number {
    return Math.round(performance.now() - f.started)
  }
}

/** A denial before policy: unknown tool, hidden tool, quarantine, schema. */
function deny(
  code: string,
  message: string,
  ruleId: string,
  toolHash?: string,
  decision: string = code,
): Refusal {
  return {
    code,
    message,
    decision,
    audit: {
      type: 'call.decision',
      decision: 'deny',
      ruleId,
      code,
      ...(toolHash === undefined ? {} : { toolHash }),
    },
  }
}

/** A catalogue tool as policy sees it, with its labels from the config. */
export function policyTool(tool: CatalogTool, config: Pick<Config, 'servers'>) {
  return {
    server: tool.server,
    name: tool.name,
    annotations: (tool.definition.annotations ?? {}) as Record<string, unknown>,
    hash: tool.hash,
    labels: toolLabels(config, tool.server, tool.name),
    ...(tool.risk ? { risk: tool.risk } : {}),
  }
}

/** The vault scope of a principal's session: a digest, so no identity sits in a store key. */
export function vaultScope(principal: Principal, session: string | undefined): string {
  return hashArgs([principal.iss, principal.sub, principal.tenant ?? '', session ?? '']).slice(-32)
}

export function auditPrincipal(principal: Principal) {
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
