/**
 * The semantics of a loaded policy set (DESIGN.md section 3, "Policies"): deny by default, deny
 * wins, approve wins over allow, and every evaluation error fails closed.
 *
 * @module
 */
import type { ParseResult } from '@marcbachmann/cel-js'
import type { Decision, DecisionEffect, Principal, Risk } from '../types.js'
import {
  CLOCK_VARIABLES,
  PolicyInputError,
  referencesVariables,
  toCelExecution,
  toCelPrincipal,
  toCelTool,
  toCelMap,
  type ToolKind,
} from './environment.js'
import type { LabelUse } from './labels.js'

/** The tool as policy sees it: the config key of its server and the upstream's own spelling. */
export interface PolicyToolInput {
  server: string
  /** Default `tool`; `prompt` and `resource` for the prompt and resource pass-through. */
  kind?: ToolKind
  name: string
  annotations: Record<string, unknown>
  hash: string
  /** `tool.labels`: the tool's data labels plus its server's (default none). */
  labels?: readonly string[]
  /** The tool's risk score; absent for what is not scored (prompts, resources). */
  risk?: Risk
}

/** `execution` while deciding a call. */
export interface PolicyExecutionInput {
  id: string
  callCount: number
  /**
   * `execution.labels`: labels of the calls authorised before this one, in the order the guest
   * issued them, each once (default none).
   */
  labels?: readonly string[]
}

/** Everything a rule may look at. `args` and `execution` exist only while deciding a call. */
export interface PolicyInput {
  principal: Principal
  tool: PolicyToolInput
  args?: Record<string, unknown>
  execution?: PolicyExecutionInput
  /** Time of the decision; defaults to the current time. */
  now?: Date
}

/** A decision with what went wrong on the way, for the audit log and `sluice policy test`. */
export interface PolicyDecision extends Decision {
  /** Rules that could not be evaluated, as `rule "id": evaluation error <code> at <line>:<col>`. */
  readonly diagnostics: readonly string[]
}

export interface RuleSummary {
  readonly id: string
  readonly effect: DecisionEffect
  readonly when: string
  readonly description?: string
  /** Absolute path of the policy file the rule came from. */
  readonly file: string
}

export interface BudgetSummary {
  readonly id: string
  readonly when: string
  readonly maxCallsPerExecution: number
  readonly file: string
}

/** What `sluice evidence` prints about the policy in force. */
export interface PolicySummary {
  /** `allow-all` when the config has no `policies:` and every tool is allowed. */
  readonly kind: 'policies' | 'allow-all'
  readonly files: readonly string[]
  readonly rules: readonly RuleSummary[]
  readonly budgets: readonly BudgetSummary[]
}

export interface MatchedBudget {
  readonly id: string
  readonly maxCallsPerExecution: number
}

/** Whether a tool is listed for a principal, and if not, which rule hides it. */
export type ListVerdict = { listed: true } | { listed: false; ruleId?: string }

const LISTED: ListVerdict = Object.freeze({ listed: true })
const UNLISTED: ListVerdict = Object.freeze({ listed: false })

/** A loaded, checked, immutable set of rules and budgets. */
export interface PolicySet {
  readonly files: readonly string[]
  readonly ruleIds: readonly string[]
  /** Decides one call. Never throws: an input or evaluation problem is a deny. */
  decide(input: PolicyInput): PolicyDecision
  /** Whether the tool is shown to the principal: an allow/approve rule could match, no deny does. */
  canList(input: Omit<PolicyInput, 'args'>): boolean
  /**
   * {@link canList} with the reason: when the tool is hidden, the rule that hides it, or no
   * `ruleId` when no allow or approve rule could match (deny by default).
   */
  listVerdict(input: Omit<PolicyInput, 'args'>): ListVerdict
  /**
   * True when {@link listVerdict} depends on nothing but its principal and tool (no rule reads
   * `now`), so a caller may keep a verdict for the same principal and tool. Absent: never keep one.
   */
  readonly listingIsTimeless?: boolean
  /** Budgets whose `when` matches the call (or fails to evaluate: fail closed). */
  budgetsFor(input: PolicyInput): MatchedBudget[]
  describe(): PolicySummary
}

/** A rule after loading: its source and its compiled, type-checked program. */
export interface CompiledRule extends RuleSummary {
  readonly program: ParseResult
  /** True when the rule names `args` or `execution`, which listing does not have. */
  readonly callPhase: boolean
  /** The label lists the rule reads and the label strings it compares them with. */
  readonly labels: LabelUse
}

export interface CompiledBudget extends BudgetSummary {
  readonly program: ParseResult
}

type Outcome = { kind: 'match' } | { kind: 'no-match' } | { kind: 'error'; detail: string }

type CelContext = Record<string, unknown>

/** Line and column (1-based) of an offset inside a `when` text. */
export function positionOf(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)))
  const lines = before.split('\n')
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 }
}

function evaluate(rule: { program: ParseResult; when: string }, ctx: CelContext): Outcome {
  // Evaluation errors are expected here (a rule that needs args while listing, a missing key)
  // and their stacks are never used; capturing one costs most of a failed evaluation.
  const stackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    const value: unknown = rule.program(ctx)
    if (value === true) return { kind: 'match' }
    if (value === false) return { kind: 'no-match' }
    return { kind: 'error', detail: 'not_a_bool' }
  } catch (err) {
    // Only the error code and the position inside the rule are kept: cel-js summaries may quote
    // argument values, and reasons reach the model and the audit log.
    const e = err as { code?: unknown; range?: { start?: unknown } }
    const code = typeof e.code === 'string' ? e.code : 'internal_error'
    const start = typeof e.range?.start === 'number' ? e.range.start : undefined
    if (start === undefined) return { kind: 'error', detail: code }
    const { line, column } = positionOf(rule.when, start)
    return { kind: 'error', detail: `${code} at ${line}:${column}` }
  } finally {
    Error.stackTraceLimit = stackTraceLimit
  }
}

function buildContext(
  input: Omit<PolicyInput, 'args'> & { args?: Record<string, unknown> },
  phase: 'call' | 'list',
): CelContext {
  const ctx: CelContext = {
    principal: toCelPrincipal(input.principal),
    tool: toCelTool(input.tool),
    now: input.now ?? new Date(),
  }
  if (phase === 'call') {
    if (input.args !== undefined) ctx.args = toCelMap(input.args)
    if (input.execution !== undefined) ctx.execution = toCelExecution(input.execution)
  }
  return ctx
}

function inputProblem(err: unknown): string {
  return err instanceof PolicyInputError ? err.message : 'input could not be read'
}

/**
 * The labels that made a label rule match: of each list the rule reads, the labels it names
 * (all of them when it names none), e.g. `tool labels: egress; execution labels: confidential`.
 */
function labelsReason(use: LabelUse, input: PolicyInput): string {
  const parts: string[] = []
  for (const list of ['tool', 'execution'] as const) {
    if (!use.lists.has(list)) continue
    const actual =
      (list === 'tool' ? input.tool.labels : input.execution?.labels) ?? ([] as readonly string[])
    const named = new Set(use.literals.filter((l) => l.list === list).map((l) => l.label))
    const shown = named.size === 0 ? [...actual] : actual.filter((l) => named.has(l))
    const sorted = list === 'tool' ? [...new Set(shown)].sort() : [...new Set(shown)]
    parts.push(`${list} labels: ${sorted.length === 0 ? 'none' : sorted.join(', ')}`)
  }
  return parts.join('; ')
}

function suffix(description: string | undefined): string {
  return description === undefined ? '' : `: ${description.trim()}`
}

/** The policy set of one or more loaded files. */
export class CelPolicySet implements PolicySet {
  readonly files: readonly string[]
  readonly ruleIds: readonly string[]
  readonly #deny: readonly CompiledRule[]
  readonly #approve: readonly CompiledRule[]
  readonly #allow: readonly CompiledRule[]
  readonly #rules: readonly CompiledRule[]
  readonly #budgets: readonly CompiledBudget[]
  readonly listingIsTimeless: boolean

  constructor(
    files: readonly string[],
    rules: readonly CompiledRule[],
    budgets: readonly CompiledBudget[],
  ) {
    this.files = Object.freeze([...files])
    this.#rules = Object.freeze([...rules])
    this.#budgets = Object.freeze([...budgets])
    this.ruleIds = Object.freeze(rules.map((r) => r.id))
    this.#deny = rules.filter((r) => r.effect === 'deny')
    this.#approve = rules.filter((r) => r.effect === 'approve')
    this.#allow = rules.filter((r) => r.effect === 'allow')
    this.listingIsTimeless = rules.every(
      (r) => !referencesVariables(r.program.ast, CLOCK_VARIABLES),
    )
  }

  decide(input: PolicyInput): PolicyDecision {
    let ctx: CelContext
    try {
      ctx = buildContext(input, 'call')
    } catch (err) {
      return {
        effect: 'deny',
        ruleId: 'invalid-input',
        reason: `denied: ${inputProblem(err)}`,
        diagnostics: [],
      }
    }
    const diagnostics: string[] = []

    for (const rule of this.#deny) {
      const outcome = evaluate(rule, ctx)
      if (outcome.kind === 'match') {
        return {
          effect: 'deny',
          ruleId: rule.id,
          reason:
            rule.labels.lists.size === 0
              ? `denied by rule "${rule.id}"${suffix(rule.description)}`
              : `rule ${rule.id} (${labelsReason(rule.labels, input)})${suffix(rule.description)}`,
          diagnostics,
        }
      }
      if (outcome.kind === 'error') {
        diagnostics.push(`rule "${rule.id}": evaluation error ${outcome.detail}`)
        return {
          effect: 'deny',
          ruleId: rule.id,
          reason: `denied by rule "${rule.id}": evaluation error (${outcome.detail}); a deny rule that cannot be evaluated denies`,
          diagnostics,
        }
      }
    }

    let approved: CompiledRule | undefined
    let approveFailed: { rule: CompiledRule; detail: string } | undefined
    for (const rule of this.#approve) {
      const outcome = evaluate(rule, ctx)
      if (outcome.kind === 'match') {
        approved = rule
        break
      }
      if (outcome.kind === 'error') {
        diagnostics.push(`rule "${rule.id}": evaluation error ${outcome.detail}`)
        approveFailed ??= { rule, detail: outcome.detail }
      }
    }
    if (approved !== undefined) {
      return {
        effect: 'approve',
        ruleId: approved.id,
        reason: `rule "${approved.id}" asks a human to approve this call${suffix(approved.description)}`,
        diagnostics,
      }
    }

    let allowed: CompiledRule | undefined
    for (const rule of this.#allow) {
      const outcome = evaluate(rule, ctx)
      if (outcome.kind === 'match') {
        allowed = rule
        break
      }
      if (outcome.kind === 'error')
        diagnostics.push(`rule "${rule.id}": evaluation error ${outcome.detail}`)
    }
    if (allowed !== undefined && approveFailed !== undefined) {
      // An approval rule that cannot be evaluated might have asked for a human; running the call
      // on the strength of the allow rule alone would fail open.
      const { rule, detail } = approveFailed
      return {
        effect: 'deny',
        ruleId: rule.id,
        reason: `denied: approval rule "${rule.id}" could not be evaluated (evaluation error ${detail}), so the call cannot run unapproved`,
        diagnostics,
      }
    }
    if (allowed !== undefined) {
      return {
        effect: 'allow',
        ruleId: allowed.id,
        reason: `allowed by rule "${allowed.id}"`,
        diagnostics,
      }
    }
    const reason =
      diagnostics.length === 0
        ? 'denied: no rule allows this call (deny by default)'
        : `denied: no rule allows this call (deny by default); ${diagnostics.join('; ')}`
    return { effect: 'deny', ruleId: 'default-deny', reason, diagnostics }
  }

  canList(input: Omit<PolicyInput, 'args'>): boolean {
    return this.listVerdict(input).listed
  }

  listVerdict(input: Omit<PolicyInput, 'args'>): ListVerdict {
    let ctx: CelContext
    try {
      ctx = buildContext(input, 'list')
    } catch {
      return UNLISTED
    }
    for (const rule of this.#deny) {
      const outcome = evaluate(rule, ctx)
      if (outcome.kind === 'match') return { listed: false, ruleId: rule.id }
      // A deny rule that needs the arguments is decided per call; any other error hides the
      // tool, as every call to it would be denied.
      if (outcome.kind === 'error' && !rule.callPhase) return { listed: false, ruleId: rule.id }
    }
    // Mirrors decide(): an approve rule that fails regardless of the arguments turns every
    // allow into a deny, so the tool is hidden unless another approve rule could match.
    let approveFailed: string | undefined
    for (const rule of this.#approve) {
      const outcome = evaluate(rule, ctx)
      if (outcome.kind === 'match') return LISTED
      if (outcome.kind === 'error') {
        if (rule.callPhase) return LISTED
        approveFailed ??= rule.id
      }
    }
    if (approveFailed !== undefined) return { listed: false, ruleId: approveFailed }
    for (const rule of this.#allow) {
      const outcome = evaluate(rule, ctx)
      if (outcome.kind === 'match') return LISTED
      if (outcome.kind === 'error' && rule.callPhase) return LISTED
    }
    return UNLISTED
  }

  budgetsFor(input: PolicyInput): MatchedBudget[] {
    const matched = (b: CompiledBudget): MatchedBudget => ({
      id: b.id,
      maxCallsPerExecution: b.maxCallsPerExecution,
    })
    let ctx: CelContext
    try {
      ctx = buildContext(input, 'call')
    } catch {
      return this.#budgets.map(matched)
    }
    return this.#budgets.filter((b) => evaluate(b, ctx).kind !== 'no-match').map(matched)
  }

  describe(): PolicySummary {
    return {
      kind: 'policies',
      files: this.files,
      rules: this.#rules.map(({ id, effect, when, description, file }) =>
        description === undefined
          ? { id, effect, when, file }
          : { id, effect, when, description, file },
      ),
      budgets: this.#budgets.map(({ id, when, maxCallsPerExecution, file }) => ({
        id,
        when,
        maxCallsPerExecution,
        file,
      })),
    }
  }
}

/** Rule id of every decision of `allowAllPolicy()`. */
export const NO_POLICIES_RULE_ID = 'no-policies'

/**
 * The policy of a config without `policies:` (`sluice run`, `sluice stdio`): every configured
 * tool is listed and allowed, no budgets.
 */
export function allowAllPolicy(): PolicySet {
  const decision: PolicyDecision = Object.freeze({
    effect: 'allow',
    ruleId: NO_POLICIES_RULE_ID,
    reason: 'allowed: no policies are configured, so every configured tool is allowed',
    diagnostics: Object.freeze([]),
  })
  const summary: PolicySummary = Object.freeze({
    kind: 'allow-all',
    files: Object.freeze([]),
    rules: Object.freeze([]),
    budgets: Object.freeze([]),
  })
  return Object.freeze({
    files: Object.freeze([]),
    ruleIds: Object.freeze([NO_POLICIES_RULE_ID]),
    decide: () => decision,
    canList: () => true,
    listVerdict: () => LISTED,
    listingIsTimeless: true,
    budgetsFor: () => [],
    describe: () => summary,
  })
}
