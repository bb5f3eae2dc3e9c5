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
import { context, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'
import {
  buildManifest,
  createSearchIndex,
  sanitizeIdentifier,
  generateDeclarations,
  fitSearchHits,
  renderDescription,
  typecheckCode,
} from '../bindings/index.js'
import { isErrorCode, isSluiceError } from '../errors.js'
import { stripInvisibleJson } from '../text.js'
import {
  MemoryVault,
  PiiGuard,
  Spotlight,
  SPOTLIGHT_NOTE,
  addCounts,
  countEntries,
  type PiiCounts,
  type Vault,
} from '../guard/index.js'
import { BudgetTracker } from '../policy/index.js'
import type { RandomSeed, SandboxCallOutcome, SandboxPool } from '../sandbox/index.js'
import { hashArgs } from '../audit/index.js'
import { currentTraceId, getTracer, metrics, setSafeAttributes } from '../telemetry/index.js'
import { configError, type Config } from '../config/index.js'
import type { PolicySet } from '../policy/index.js'
import type { LockFile } from '../registry/index.js'
import type {
  CallRecord,
  CatalogTool,
  DefinitionHash,
  ExecutionError,
  ExecutionResult,
  Json,
  Principal,
  SuspendedExecution,
} from '../types.js'
import { Catalog, type CatalogEvent } from './catalog.js'
import { MemoryStore, type SharedStore } from '../store/index.js'
import { Admission, admissionKey, type Refusal } from './admission.js'
import {
  auditPrincipal,
  Dispatcher,
  policyTool,
  type CallNote,
  vaultScope,
  type CallRequest,
} from './dispatch.js'
import {
  DIRECT_WORDING,
  Journal,
  newSeed,
  saveRun,
  saveSingle,
  takeRun,
  type SuspendedRun,
} from './durable.js'
import { LabelLedger } from './labels.js'
import { collisionProblems, resolveForProblems, toolKeyProblems } from './tool-names.js'
import { explainError, silentMistakes } from './mistakes.js'
import { Tasks } from './tasks.js'
import { Passthrough, type PassthroughOptions, type PassthroughSuspended } from './passthrough.js'
import type {
  GetPromptResult,
  Prompt,
  ReadResourceResult,
  Resource,
  ResourceTemplate,
  UpstreamProgress,
} from '../upstream/index.js'
import { sanitizeMessage } from './result.js'

import type { ApprovalHandler, ApprovalRequest, DispatchDeps, GuardState } from './dispatch.js'
export type { ApprovalAnswer, ApprovalHandler } from './dispatch.js'

/** A direct-mode call's answer, as `tools/call` returns it; `suspended` when it waits for a human. */
export interface DirectCallResult {
  content: unknown[]
  structuredContent?: unknown
  isError?: boolean
  /** The call stopped at an approval (`durable`): the question, and the token to answer it. */
  suspended?: SuspendedExecution
}

export interface ExecuteOptions {
  /** Aborts the execution (client cancellation) → `CANCELLED`. */
  signal?: AbortSignal
  /** The caller's bearer token, for token-exchange grants. Never enters the sandbox. */
  inboundToken?: string
  approve?: ApprovalHandler
  /** Progress for the client (e.g. "waiting for approval"); keeps progress-aware clients waiting. */
  onProgress?: (message: string) => void
  /**
   * Approvals without a waiting request (durable.ts): an `approve` rule stops the run, which
   * comes back as `result.suspended`, kept in the store for `gateway.approvalTimeoutMs`;
   * `resume` runs the same code again with the client's answer. `approve` is then not used.
   */
  durable?: { resume?: { token: string; answer: 'accept' | 'decline' } }
  /** Progress an upstream reported for an inner call (`tool` is `server.tool`). */
  onUpstreamProgress?: (tool: string, progress: UpstreamProgress) => void
  /** An inner call completed, either way (`tool` is `server.tool`). */
  onCallDone?: (tool: string, outcome: { ok: boolean; code?: string }) => void
  /**
   * The client's session (an MCP session, a stdio connection): PII tokens are stable and
   * resolve within the principal's session; without one, within the principal.
   */
  session?: string
  /**
   * The trace context this execution's span is a child of (the gateway's `tools/call` span);
   * default the active context. Contexts travel explicitly: sluice registers no async context
   * manager, whose promise hooks would cost every promise of the process.
   */
  traceParent?: Context
}

/** The engine's parts; the dispatcher's (dispatch.ts) plus the pool and the lock. */
export interface EngineDeps extends Omit<DispatchDeps, 'catalog' | 'safe'> {
  pool: SandboxPool
  lock?: import('../registry/index.js').LockFile
  /** Shared state (rate-limit buckets); default in-process. The engine does not close it. */
  store?: SharedStore
  /** The PII vault; default in-process, made when `guardrails.pii` tokenises. */
  vault?: Vault
}

/** One declared match of `searchTools`. */
export interface SearchResult {
  /** `server.tool`. */
  tool: string
  /** Its full declaration, or the compact one when the full one no longer fit the budget. */
  declaration: string
  score: number
}

/** A `search_tools` answer: declared matches, best first, then the paths of those that did not fit. */
export interface SearchAnswer {
  matches: SearchResult[]
  /** `tools.<server>.<tool>` of further matches past `gateway.searchBudgetBytes`. */
  more: string[]
}

export interface EngineHealth {
  ready: boolean
  upstreams: Record<
    string,
    {
      state: string
      lastError?: string
      /** Connect attempts after the first (respawns, reconnects). */
      restarts: number
      /** In `backoff`: milliseconds until the next connect attempt. */
      retryInMs?: number
      tools: number
      quarantined: number
    }
  >
  pool: { workers: number; ready: number; busy: number }
  /** Admission: executions running and waiting, and whether new ones are refused (drain). */
  executions: { running: number; queued: number; draining: boolean }
}

/** How long an execution waits for a stale server's re-listing before it runs without it. */
const STALE_WAIT_MS = 1_000

/**
 * Waits for `work`, for at most `ms`. The timer is cleared when the work ends first: a timer
 * left pending would hold its promise for `ms` after every execution, long enough for the
 * garbage collector to move it to the old generation.
 */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      work,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms).unref()
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

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
  readonly #deps: EngineDeps
  readonly #admission: Admission
  readonly #store: SharedStore
  /** `execute_code` as tasks (MCP 2026-07-28), their state in the store. */
  readonly tasks: Tasks
  /** What the current config produced; an execution keeps the one it started with. */
  #gen: Generation

  /** Outlives reloads, so a token made before one still resolves after it. */
  #vault: Vault | undefined
  /** Set once `start()` has checked the config against the catalogue. */
  #started = false

  /** `tools.<ident>` → the config key (`my-db` is `tools.my_db`); the config rejects collisions. */
  readonly #serverByIdent = new Map<string, string>()

  constructor(deps: EngineDeps) {
    this.#deps = deps
    this.#vault = deps.vault
    for (const name of Object.keys(deps.config.servers)) {
      this.#serverByIdent.set(name, name)
      const ident = sanitizeIdentifier(name)
      if (ident !== undefined) this.#serverByIdent.set(ident, name)
    }
    // Before the first generation: its pass-through keeps stopped requests in the store.
    this.#store = deps.store ?? new MemoryStore()
    this.#gen = this.#generation(deps.config, deps.policy, deps.lock)
    this.tasks = new Tasks({
      store: this.#store,
      settings: () => ({
        ...this.#gen.config.gateway.tasks,
        approvalTimeoutMs: this.#gen.config.gateway.approvalTimeoutMs,
      }),
      ownerKey: (principal) =>
        hashArgs(admissionKey(principal)).slice('sha256:'.length, 'sha256:'.length + 32),
      run: (principal, code, options) => this.execute(principal, code, options),
      ...(deps.log ? { log: deps.log } : {}),
    })
    this.#admission = new Admission(
      admissionLimits(deps.config),
      {
        onRefused: (code) => metrics.executionRejections.inc({ reason: code }),
        onAdmitted: (waitedMs) => metrics.executionQueueWait.observe({}, waitedMs / 1000),
      },
      this.#store,
    )
  }

  /** The catalogue of the current config. */
  get catalog(): Catalog {
    return this.#gen.catalog
  }

  #generation(config: Config, policy: PolicySet, lock: LockFile | undefined): Generation {
    const catalog: Catalog = new Catalog({
      config,
      upstreams: this.#deps.upstreams,
      ...(lock ? { lock } : {}),
      onEvent: (event) => {
        if (event.type === 'listed') this.#onListed(event.server, { config, lock, catalog })
        else this.#onCatalogEvent(event)
      },
    })
    const piiConfig = config.guardrails.pii
    if (piiConfig?.mode === 'tokenize' && this.#vault === undefined) {
      this.#vault = new MemoryVault(piiConfig)
    }
    const pii =
      piiConfig === undefined || piiConfig.mode === 'off'
        ? undefined
        : new PiiGuard(piiConfig, piiConfig.mode === 'tokenize' ? this.#vault : undefined)
    const dispatcher = new Dispatcher({
      config,
      catalog,
      ...(pii ? { pii } : {}),
      upstreams: this.#deps.upstreams,
      policy,
      ...(lock ? { lock } : {}),
      ...(this.#deps.grants ? { grants: this.#deps.grants } : {}),
      ...(this.#deps.redactor ? { redactor: this.#deps.redactor } : {}),
      ...(this.#deps.audit ? { audit: this.#deps.audit } : {}),
      ...(this.#deps.log ? { log: this.#deps.log } : {}),
      safe: (message) => this.#safe(message),
    })
    const passthrough = new Passthrough({
      config,
      upstreams: this.#deps.upstreams,
      policy,
      ...(this.#deps.grants ? { grants: this.#deps.grants } : {}),
      ...(this.#deps.redactor ? { redactor: this.#deps.redactor } : {}),
      ...(this.#deps.audit ? { audit: this.#deps.audit } : {}),
      ...(this.#deps.log ? { log: this.#deps.log } : {}),
      ...(pii ? { pii } : {}),
      store: this.#store,
    })
    return { config, policy, lock, catalog, dispatcher, passthrough, pii, views: new Map() }
  }

  /**
   * Swaps in what a reloaded config produced: policies, lock, limits. Its catalogue is listed
   * first, so the swap is one assignment; executions already running finish on the generation
   * they started with. The servers, the sandbox and the audit stay (a change to them needs a
   * restart: the caller refuses such a reload before it gets here).
   */
  async reload(next: { config: Config; policy: PolicySet; lock?: LockFile }): Promise<void> {
    const gen = this.#generation(next.config, next.policy, next.lock)
    await gen.catalog.refresh()
    this.#checkToolNames(gen)
    this.#gen = gen
    this.#admission.setLimits(admissionLimits(next.config))
  }

  /**
   * Lists every upstream once; failures are recorded, never thrown (the gateway stays up).
   *
   * @throws SluiceError `CONFIG_INVALID` when a `servers.<name>.tools` key names a tool its
   *   server does not have.
   */
  async start(): Promise<void> {
    await this.#gen.catalog.refresh()
    this.#checkToolNames(this.#gen)
    this.#started = true
  }

  /**
   * Tool names in the config (`servers.<name>.tools` keys, `guardrails.pii.resolveFor`) name
   * tools that exist, and no two tools of one server share an identifier (tool-names.ts). A
   * server the catalogue does not know yet (down, and not in the lock) is checked once it is
   * listed.
   *
   * @throws SluiceError `CONFIG_INVALID` naming each bad entry with the closest tool, or both
   *   colliding tools.
   */
  #checkToolNames(gen: Generation): void {
    const { problems, unchecked } = toolKeyProblems(gen.config, gen.catalog, gen.lock)
    problems.unshift(...collisionProblems(gen.catalog))
    problems.push(...resolveForProblems(gen.config, gen.catalog, gen.lock))
    if (problems.length > 0) throw configError(gen.config.file ?? '<inline>', problems)
    for (const server of unchecked) {
      this.#deps.log?.(
        'warn',
        `servers.${server}.tools: not checked yet: server ${server} has not been listed and is not in the lock`,
      )
    }
  }

  /** A server listed after the start: a bad `tools` key can only be reported now. */
  #onListed(server: string, gen: Pick<Generation, 'config' | 'lock' | 'catalog'>): void {
    if (!this.#started) return
    const { problems } = toolKeyProblems(gen.config, gen.catalog, gen.lock, [server])
    for (const problem of problems)
      this.#deps.log?.('warn', `${problem}; its labels apply to nothing`, { server })
  }

  /** Re-lists one server after `tools/list_changed`. */
  async refresh(server?: string): Promise<void> {
    await this.#gen.catalog.refresh(server)
  }

  #onCatalogEvent(event: Exclude<CatalogEvent, { type: 'listed' }>): void {
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
    } else if (event.type === 'collision') {
      // At start and reload this also stops the config (#checkToolNames); a server that starts
      // colliding later (tools/list_changed) loses both tools and says so here.
      log?.('error', `${event.message}; rename one upstream`)
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

  #view(principal: Principal, gen: Generation = this.#gen) {
    const key = this.#principalKey(principal)
    const version = gen.catalog.version
    let view = gen.views.get(key)
    if (!view || view.version !== version) {
      const tools = gen.catalog
        .tools()
        .filter((tool) => gen.policy.canList({ principal, tool: policyTool(tool, gen.config) }))
      view = { version, tools }
      if (gen.views.size > 1000) gen.views.clear()
      gen.views.set(key, view)
    }
    return view
  }

  /** Tools this principal may see (policy-filtered; filtering is cosmetic, the dispatcher decides). */
  listTools(principal: Principal, gen: Generation = this.#gen): CatalogTool[] {
    this.#retryStale()
    return this.#view(principal, gen).tools
  }

  /** Servers that were down at start are listed again in the background (bounded rate). */
  #retryStale(): void {
    this.#gen.catalog.refreshStale().catch((cause: unknown) => {
      this.#deps.log?.('warn', 'catalogue refresh failed', { error: String(cause) })
    })
  }

  /**
   * Quarantined tools stay in the guest's manifest (with their pinned definition) so that a call
   * reaches the dispatcher and gets `QUARANTINED` rather than a misleading `UNKNOWN_TOOL`. They are
   * never listed or described.
   */
  #quarantinedBindings(principal: Principal, gen: Generation) {
    const lock = gen.lock
    if (!lock) return []
    return [...gen.catalog.servers().values()]
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
        return gen.policy.canList({ principal, tool: policyTool(tool, gen.config) })
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

  /** The `execute_code` description: the richest form of the tools that fits the budget. */
  describeExecuteCode(principal: Principal): string {
    const view = this.#view(principal)
    const { descriptionBudgetBytes, searchBudgetBytes } = this.#gen.config.gateway
    const notes = guardNotes(this.#gen.config)
    view.description ??=
      renderDescription(view.tools.map(bindingTool), {
        budgetBytes: Math.max(0, descriptionBudgetBytes - Buffer.byteLength(notes)),
        searchBytes: searchBudgetBytes,
      }) + notes
    return view.description
  }

  /**
   * Ranks this principal's tools for a query; the best `limit` come back declared, full while
   * they fit `gateway.searchBudgetBytes`, then compact, the rest named in `more`.
   */
  searchTools(principal: Principal, query: string, limit = 5): SearchAnswer {
    const view = this.#view(principal)
    view.search ??= createSearchIndex(view.tools.map(bindingTool))
    const hits = view.search.search(query, limit)
    const { shown, more } = fitSearchHits(hits, this.#gen.config.gateway.searchBudgetBytes)
    return {
      matches: shown.map((r) => ({
        tool: `${r.server}.${r.name}`,
        declaration: r.declaration,
        score: r.score,
      })),
      more: [...more],
    }
  }

  health(): EngineHealth {
    const upstreamHealth = this.#deps.upstreams.health()
    const upstreams: EngineHealth['upstreams'] = {}
    for (const [name, state] of this.#gen.catalog.servers()) {
      const h = upstreamHealth[name]
      upstreams[name] = {
        state: h?.state ?? 'unknown',
        ...((h?.lastError ?? state.lastError)
          ? { lastError: sanitizeMessage(h?.lastError ?? state.lastError ?? '') }
          : {}),
        restarts: h?.restarts ?? 0,
        ...(h?.retryInMs === undefined ? {} : { retryInMs: h.retryInMs }),
        tools: state.tools.length,
        quarantined: state.quarantined.length,
      }
    }
    const pool = this.#deps.pool.stats()
    const admission = this.#admission
    return {
      ready: pool.workers > 0,
      upstreams,
      pool: { workers: pool.workers, ready: pool.ready, busy: pool.busy },
      executions: {
        running: admission.running,
        queued: admission.queued,
        draining: admission.draining,
      },
    }
  }

  /** Whether an execution by `principal` would be refused now (the HTTP edge's early answer). */
  checkAdmission(principal: Principal): Promise<Refusal | undefined> {
    return this.#admission.check(admissionKey(principal))
  }

  /** Refuses new and queued executions from now on; running ones finish. */
  drain(): void {
    this.#admission.drain()
  }

  /** Resolves when no execution is running. */
  idle(): Promise<void> {
    return this.#admission.idle()
  }

  /**
   * Runs model code once, when admission lets it (src/engine/admission.ts). Never throws for
   * anything the model or an upstream did: the result carries `ok: false` and an error code
   * instead (`OVERLOADED`, `RATE_LIMITED` with `retryAfterMs` when it did not start).
   */
  async execute(
    principal: Principal,
    code: string,
    options: ExecuteOptions = {},
  ): Promise<ExecutionResult> {
    const admitted = await this.#admission.acquire(admissionKey(principal), options.signal)
    if (!admitted.ok) {
      metrics.executions.inc({ outcome: admitted.code })
      const error: ExecutionError =
        admitted.code === 'CANCELLED'
          ? { code: admitted.code, message: admitted.message }
          : { code: admitted.code, message: admitted.message, retryAfterMs: admitted.retryAfterMs }
      return { ok: false, result: undefined, logs: [], calls: [], error }
    }
    try {
      return await this.#run(principal, code, options)
    } finally {
      admitted.release()
    }
  }

  async #run(
    principal: Principal,
    code: string,
    options: ExecuteOptions,
  ): Promise<ExecutionResult> {
    const tracer = getTracer()
    // The config this execution started with is the one it finishes with, whatever reloads.
    const gen = this.#gen
    const codeHash = hashArgs(code)
    const resume = options.durable?.resume
    let prior: SuspendedRun | undefined
    if (resume !== undefined) {
      const taken = await takeRun(
        this.#store,
        admissionKey(principal),
        resume.token,
        codeHash,
        gen.config.gateway.approvalTimeoutMs,
      )
      if (!taken.ok) {
        metrics.executions.inc({ outcome: taken.error.code })
        return { ok: false, result: undefined, logs: [], calls: [], error: taken.error }
      }
      prior = taken.run
    }
    const traceBase = options.traceParent ?? context.active()
    const span = tracer.startSpan('execute_code', {}, traceBase)
    return (async () => {
      const started = performance.now()
      // A resumed run is the same execution: its records join the ones before the approval.
      const executionId = prior?.executionId ?? randomUUID()
      setSafeAttributes(span, {
        'mcp.method.name': 'tools/call',
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'execute_code',
        'sluice.execution.id': executionId,
        'sluice.code.sha256': codeHash,
        'sluice.code.bytes': Buffer.byteLength(code),
        // Hashed by the allowlist unless the operator chose otherwise.
        'enduser.id': principal.sub,
      })
      const parent = trace.setSpan(traceBase, span)
      const calls: CallRecord[] = []
      // The caller's token may come back in an upstream error or a tool result: scrub it too.
      if (options.inboundToken) this.#deps.redactor?.add(options.inboundToken)
      try {
        const traceId = currentTraceId(parent)
        // Written, not synced: nothing leaves the sandbox before the next durable record (a
        // call's decision or the execution's end), whose sync covers this one.
        await this.#deps.audit?.append(
          {
            type: 'execution.start',
            executionId,
            principal: auditPrincipal(principal),
            codeHash,
            ...(prior === undefined ? {} : { status: 'resumed' }),
            ...(traceId ? { traceId } : {}),
          },
          { durable: false },
        )
        // A server that was down at start may be up now: give it a short chance to join.
        await within(gen.catalog.refreshStale(), STALE_WAIT_MS)
        const tools = this.listTools(principal, gen)
        const budget = new BudgetTracker(prior?.budget)
        // One per execution: a resumed run starts empty and its journal restores the labels.
        const ledger = new LabelLedger()
        const notes: CallNote[] = []
        const guard: GuardState = {
          scope: vaultScope(principal, options.session),
          counts: {},
          toolData: false,
        }
        // Durable approvals: the journal answers replayed calls and stops the run at an approval.
        const stop = new AbortController()
        const journal =
          options.durable === undefined
            ? undefined
            : new Journal({
                ...(prior === undefined ? {} : { resume: { run: prior, answer: resume!.answer } }),
                ledger,
                onStop: () => stop.abort(),
              })
        const callOptions =
          journal === undefined ? options : { ...options, approve: journal.approve }
        const seed = journal === undefined ? undefined : (prior?.seed ?? newSeed())
        const signal =
          journal === undefined
            ? options.signal
            : options.signal === undefined
              ? stop.signal
              : AbortSignal.any([options.signal, stop.signal])
        const outcome = await this.#deps.pool.execute({
          code,
          manifest: buildManifest([
            ...tools.map(bindingTool),
            ...this.#quarantinedBindings(principal, gen),
          ]),
          limits: gen.config.limits,
          ...(signal ? { signal } : {}),
          ...(seed ? { randomSeed: seed } : {}),
          onCall: (call, callSignal) => {
            const dispatch = (into: CallRecord[]) =>
              this.#dispatch(
                {
                  principal,
                  executionId,
                  call,
                  signal: callSignal,
                  calls: into,
                  budget,
                  ledger,
                  parent,
                  notes,
                  visible: tools,
                  guard,
                },
                callOptions,
                gen,
              )
            return journal === undefined
              ? dispatch(calls)
              : journal.call(call, callSignal, calls, dispatch)
          },
        })
        if (journal?.divergence !== undefined || journal?.suspension !== undefined) {
          return await this.#stopped(span, {
            principal,
            executionId,
            codeHash,
            started,
            calls,
            journal,
            budget,
            seed: seed!,
            gen,
            ...(traceId ? { traceId } : {}),
          })
        }
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
        // Common mistakes get their line and fix (mistakes.ts), from host records and the source.
        const mistakes = { code, outcome, visible: tools, calls, notes }
        const warnings = outcome.ok ? silentMistakes(mistakes) : outcome.warnings
        if (warnings.length > 0) result.warnings = redact(warnings)
        if (!outcome.ok && outcome.error) {
          const explained = explainError(outcome.error, mistakes)
          const error: ExecutionError = {
            code: explained.code,
            message: this.#safe(explained.message),
            ...(explained.line !== undefined ? { line: explained.line } : {}),
            ...(explained.column !== undefined ? { column: explained.column } : {}),
          }
          if (TYPECHECK_ON.has(error.code)) {
            const diagnostics = await this.#diagnose(principal, code)
            if (diagnostics.length > 0) error.diagnostics = diagnostics
          }
          result.error = error
        }
        await this.#guardResult(result, gen, guard, ledger.labels())
        await this.#end(
          span,
          { principal, executionId, started, calls, traceId },
          result,
          guard.counts,
        )
        return result
      } catch (cause) {
        if (isSluiceError(cause) && STORE_OUTAGE.has(cause.code)) {
          // The PII vault's store is down or contended: the result cannot be tokenised, so it
          // is withheld (fail closed), and the caller is told to retry rather than "a bug".
          metrics.executions.inc({ outcome: 'OVERLOADED' })
          setSafeAttributes(span, { 'error.type': 'OVERLOADED' })
          return {
            ok: false,
            result: undefined,
            logs: [],
            calls,
            error: {
              code: 'OVERLOADED',
              message: `the PII vault is unavailable (${cause.code}): the result of execution ${executionId} (after ${calls.length} inner calls) is withheld rather than shown untokenised. Retry in a moment`,
              retryAfterMs: VAULT_RETRY_MS,
            },
          }
        }
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
    })()
  }

  /** A run the journal stopped: kept for the human's answer, or refused as diverged. */
  async #stopped(
    span: Span,
    run: {
      principal: Principal
      executionId: string
      codeHash: string
      started: number
      calls: CallRecord[]
      journal: Journal
      budget: BudgetTracker
      seed: RandomSeed
      gen: Generation
      traceId?: string
    },
  ): Promise<ExecutionResult> {
    const { journal, gen } = run
    const pending = journal.suspension
    let result: ExecutionResult
    if (pending === undefined) {
      const divergence = journal.divergence!
      result = {
        ok: false,
        result: undefined,
        logs: [],
        calls: run.calls,
        error: { code: 'REPLAY_DIVERGED', message: this.#safe(divergence.message) },
      }
    } else {
      const { approvalTimeoutMs, approvalJournalMaxBytes } = gen.config.gateway
      const expiresAt = Date.now() + approvalTimeoutMs
      const saved = await saveRun(
        this.#store,
        admissionKey(run.principal),
        {
          v: 1,
          executionId: run.executionId,
          codeHash: run.codeHash,
          seed: run.seed,
          expiresAt,
          pending,
          journal: journal.entries(),
          budget: run.budget.entries(),
        },
        { ttlMs: approvalTimeoutMs, maxBytes: approvalJournalMaxBytes },
      )
      result = saved.ok
        ? {
            ok: false,
            result: undefined,
            logs: [],
            calls: run.calls,
            suspended: { token: saved.token, question: pending.request, expiresAt },
          }
        : { ok: false, result: undefined, logs: [], calls: run.calls, error: saved.error }
    }
    await this.#end(span, run, result)
    return result
  }

  /** The end of every run, finished or stopped: span status, the `execution.end` record, metrics. */
  async #end(
    span: Span,
    run: {
      principal: Principal
      executionId: string
      started: number
      calls: CallRecord[]
      traceId?: string | undefined
    },
    result: ExecutionResult,
    pii: PiiCounts = {},
  ): Promise<void> {
    const status = result.suspended !== undefined ? 'suspended' : result.ok ? 'ok' : 'error'
    if (status === 'error') {
      span.setStatus({ code: SpanStatusCode.ERROR })
      setSafeAttributes(span, { 'error.type': result.error?.code ?? 'INTERNAL' })
    }
    setSafeAttributes(span, { 'sluice.call.count': run.calls.length })
    await this.#deps.audit?.append({
      type: 'execution.end',
      executionId: run.executionId,
      principal: auditPrincipal(run.principal),
      status,
      ...(result.error ? { code: result.error.code } : {}),
      ...(run.traceId ? { traceId: run.traceId } : {}),
      callCount: run.calls.length,
      ms: Math.round(performance.now() - run.started),
      ...(Object.keys(pii).length === 0 ? {} : { pii }),
    })
    metrics.executions.inc({
      outcome: status === 'error' ? codeLabel(result.error?.code) : status,
    })
    metrics.executionDuration.observe({}, (performance.now() - run.started) / 1000)
  }

  /**
   * The model boundary: PII in the result, logs, warnings and error becomes tokens (or is
   * redacted), and once any tool returned data, spotlighting fences every string the model reads:
   * what a script returns cannot be traced to its sources, so all of it counts as tool data.
   */
  async #guardResult(
    result: ExecutionResult,
    gen: Generation,
    guard: GuardState,
    /** The execution's labels: every token made here carries them (no laundering). */
    labels: readonly string[],
  ): Promise<void> {
    // Tag characters, zero-width and bidi controls in tool data stop here (ASCII smuggling):
    // stripped before detection (with PII on, in the same walk).
    const { pii } = gen
    if (pii === undefined) {
      if (result.result !== undefined) result.result = stripInvisibleJson(result.result)
    } else {
      const counts: PiiCounts = {}
      const protect = async <T extends Json | undefined>(value: T): Promise<T> => {
        const done = await pii.protect(value, guard.scope, labels)
        addCounts(counts, done.counts)
        return done.value
      }
      if (result.result !== undefined) {
        const done = await pii.protectStripped(result.result, guard.scope, labels)
        addCounts(counts, done.counts)
        result.result = done.value
      }
      result.logs = await protect(result.logs)
      if (result.warnings !== undefined) {
        for (const w of result.warnings) w.message = await protect(w.message)
      }
      if (result.error !== undefined) result.error.message = await protect(result.error.message)
      for (const [kind, n] of countEntries(counts))
        metrics.piiDetections.inc({ kind, boundary: 'model' }, n)
      addCounts(guard.counts, counts)
    }
    if (gen.config.guardrails.spotlight && guard.toolData) {
      const spotlight = new Spotlight()
      if (result.result !== undefined) result.result = spotlight.fenceJson(result.result)
      result.logs = result.logs.map((line) => spotlight.fence(line))
      if (result.error !== undefined) result.error.message = spotlight.fence(result.error.message)
    }
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

  /** One inner call: the server key as configured (`tools.my_db` is `my-db`), then the pipeline. */
  #dispatch(
    req: Omit<CallRequest, 'inboundToken' | 'approve' | 'onProgress' | 'onUpstreamProgress'>,
    options: ExecuteOptions,
    gen: Generation = this.#gen,
  ): Promise<SandboxCallOutcome> {
    const server = this.#serverByIdent.get(req.call.server) ?? req.call.server
    const outcome = gen.dispatcher.dispatch({
      ...req,
      call: { ...req.call, server },
      ...(options.inboundToken ? { inboundToken: options.inboundToken } : {}),
      ...(options.approve ? { approve: options.approve } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.onUpstreamProgress ? { onUpstreamProgress: options.onUpstreamProgress } : {}),
    })
    const done = options.onCallDone
    return done === undefined
      ? outcome
      : outcome.then((o) => {
          done(`${server}.${req.call.tool}`, o.ok ? { ok: true } : { ok: false, code: o.code })
          return o
        })
  }

  /** Direct mode: one upstream tool proxied under the same checks (no sandbox). */
  async callDirect(
    principal: Principal,
    tool: CatalogTool,
    args: unknown,
    options: ExecuteOptions = {},
  ): Promise<DirectCallResult> {
    const calls: CallRecord[] = []
    const executionId = randomUUID()
    if (options.inboundToken) this.#deps.redactor?.add(options.inboundToken)
    const gen = this.#gen
    // Durable approvals: an `approve` rule stops the call and keeps it in the store; the
    // client's answer to the question resumes that very call (same tool, same arguments).
    const durable = options.durable
    const callHash = hashArgs({ server: tool.server, tool: tool.name, args: args ?? {} })
    let answer: 'accept' | 'decline' | undefined
    if (durable?.resume !== undefined) {
      const taken = await takeRun(
        this.#store,
        admissionKey(principal),
        durable.resume.token,
        callHash,
        gen.config.gateway.approvalTimeoutMs,
        DIRECT_WORDING,
      )
      if (!taken.ok) {
        return {
          content: [{ type: 'text', text: `${taken.error.code}: ${taken.error.message}` }],
          isError: true,
        }
      }
      answer = durable.resume.answer
    }
    let asked: ApprovalRequest | undefined
    const callOptions: ExecuteOptions =
      durable === undefined
        ? options
        : {
            ...options,
            approve: async (request) => {
              if (answer !== undefined) return answer
              asked = request
              return 'suspended'
            },
          }
    const guard: GuardState = {
      scope: vaultScope(principal, options.session),
      counts: {},
      toolData: false,
    }
    const ledger = new LabelLedger()
    const outcome = await this.#dispatch(
      {
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
        calls,
        budget: new BudgetTracker(),
        // Direct mode has no execution: each call is its own, with labels of its own only.
        ledger,
        parent: options.traceParent ?? context.active(),
        guard,
      },
      callOptions,
      gen,
    )
    if (asked !== undefined)
      return this.#suspendDirect(principal, executionId, callHash, tool, asked)
    // The model reads this directly: the same boundary as an execution's result.
    const shown: ExecutionResult = outcome.ok
      ? { ok: true, result: outcome.value, logs: [], calls }
      : {
          ok: false,
          result: undefined,
          logs: [],
          calls,
          error: { code: outcome.code, message: outcome.message },
        }
    await this.#guardResult(shown, gen, guard, ledger.labels())
    if (!shown.ok) {
      return {
        content: [{ type: 'text', text: `${shown.error!.code}: ${shown.error!.message}` }],
        isError: true,
      }
    }
    const value = shown.result as Json
    return {
      content: [{ type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value) }],
      ...(value !== null && typeof value === 'object' && !Array.isArray(value)
        ? { structuredContent: value }
        : {}),
    }
  }

  /** A direct-mode call stopped at its approval: kept in the store until the client answers. */
  async #suspendDirect(
    principal: Principal,
    executionId: string,
    callHash: string,
    tool: CatalogTool,
    asked: ApprovalRequest,
  ): Promise<DirectCallResult> {
    const { index, ...request } = asked
    const saved = await saveSingle(
      this.#store,
      admissionKey(principal),
      executionId,
      callHash,
      { server: tool.server, tool: tool.name, index, request },
      this.#gen.config.gateway,
    )
    if (!saved.ok) {
      return {
        content: [{ type: 'text', text: `${saved.error.code}: ${saved.error.message}` }],
        isError: true,
      }
    }
    return { content: [], suspended: saved.suspended }
  }

  /** Upstream prompts this principal may use, namespaced `<server>__<name>` (passthrough.ts). */
  listPrompts(principal: Principal): Promise<Prompt[]> {
    return this.#gen.passthrough.listPrompts(principal)
  }

  /**
   * Renders a prompt after policy allowed it; throws `SluiceError` (passthrough.ts). Only with
   * `options.durable` can an approval stop it (`{ suspended }`).
   */
  getPrompt(
    principal: Principal,
    name: string,
    args: Readonly<Record<string, string>>,
    options?: PassthroughOptions & { durable?: undefined },
  ): Promise<GetPromptResult>
  getPrompt(
    principal: Principal,
    name: string,
    args: Readonly<Record<string, string>>,
    options?: PassthroughOptions,
  ): Promise<GetPromptResult | PassthroughSuspended>
  getPrompt(
    principal: Principal,
    name: string,
    args: Readonly<Record<string, string>>,
    options: PassthroughOptions = {},
  ): Promise<GetPromptResult | PassthroughSuspended> {
    if (options.inboundToken) this.#deps.redactor?.add(options.inboundToken)
    return this.#gen.passthrough.getPrompt(principal, name, args, options)
  }

  /** Upstream resources this principal may read, as `sluice://<server>/<uri>`. */
  listResources(principal: Principal): Promise<Resource[]> {
    return this.#gen.passthrough.listResources(principal)
  }

  /** Upstream resource templates this principal may read, namespaced like resources. */
  listResourceTemplates(principal: Principal): Promise<ResourceTemplate[]> {
    return this.#gen.passthrough.listResourceTemplates(principal)
  }

  /**
   * Reads a namespaced resource after policy allowed it; throws `SluiceError`. Only with
   * `options.durable` can an approval stop it (`{ suspended }`).
   */
  readResource(
    principal: Principal,
    uri: string,
    options?: PassthroughOptions & { durable?: undefined },
  ): Promise<ReadResourceResult>
  readResource(
    principal: Principal,
    uri: string,
    options?: PassthroughOptions,
  ): Promise<ReadResourceResult | PassthroughSuspended>
  readResource(
    principal: Principal,
    uri: string,
    options: PassthroughOptions = {},
  ): Promise<ReadResourceResult | PassthroughSuspended> {
    if (options.inboundToken) this.#deps.redactor?.add(options.inboundToken)
    return this.#gen.passthrough.readResource(principal, uri, options)
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([
      this.tasks.close(),
      this.#deps.upstreams.close(),
      this.#deps.pool.close(),
    ])
    for (const r of results) {
      if (r.status === 'rejected')
        this.#deps.log?.('warn', 'error while closing', { error: String(r.reason) })
    }
  }
}

function bindingTool(tool: CatalogTool) {
  return { server: tool.server, name: tool.name, ident: tool.ident, definition: tool.definition }
}

/** An error code as a metric label: one of sluice's codes, never free text from a guest or upstream. */
function codeLabel(code: string | undefined): string {
  return isErrorCode(code) ? code : 'INTERNAL'
}

/** Store failures an execution survives as `OVERLOADED` (retry), not as an engine bug. */
const STORE_OUTAGE: ReadonlySet<string> = new Set(['STORE_UNAVAILABLE', 'VAULT_CONTENDED'])
const VAULT_RETRY_MS = 1_000

/** What one config produces. */
interface Generation {
  config: Config
  policy: PolicySet
  lock: LockFile | undefined
  catalog: Catalog
  dispatcher: Dispatcher
  passthrough: Passthrough
  /** `guardrails.pii`, unless absent or `off`. */
  pii: PiiGuard | undefined
  /** Per-principal views of the catalogue (listing, declarations, search). */
  views: Map<
    string,
    {
      version: number
      tools: CatalogTool[]
      dts?: string
      description?: string
      search?: ReturnType<typeof createSearchIndex>
    }
  >
}

function admissionLimits(config: Config) {
  const { limits } = config
  return {
    maxConcurrentExecutions: limits.maxConcurrentExecutions,
    maxQueuedExecutions: limits.maxQueuedExecutions,
    queueTimeoutMs: limits.timeoutMs,
    ...(limits.perPrincipal.executionsPerMinute === undefined
      ? {}
      : { executionsPerMinute: limits.perPrincipal.executionsPerMinute }),
  }
}

/** What the `execute_code` description adds for the guardrails in force. */
function guardNotes(config: Config): string {
  const notes: string[] = []
  if (config.guardrails.pii?.mode === 'tokenize')
    notes.push(
      'Values like [EMAIL_1] stand for personal data kept by the gateway: pass them on as they are.',
    )
  if (config.guardrails.spotlight) notes.push(SPOTLIGHT_NOTE)
  return notes.length === 0 ? '' : `\n${notes.join('\n')}\n`
}
