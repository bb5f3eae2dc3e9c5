/**
 * Policy: the typed CEL environment, loading and checking policy files at start, and the
 * per-call decision (deny by default, deny wins, approve over allow, fail closed).
 *
 * @module
 */
export { loadPolicies, compileWhen, policyFileSchema, POLICY_ID_PATTERN } from './load.js'
export type { PolicyFile, LoadPolicyOptions } from './load.js'
export { labelUse } from './labels.js'
export type { LabelUse, LabelLiteral, LabelList } from './labels.js'
export { allowAllPolicy, NO_POLICIES_RULE_ID } from './policy-set.js'
export type {
  PolicySet,
  ListVerdict,
  PolicyInput,
  PolicyToolInput,
  PolicyExecutionInput,
  PolicyDecision,
  PolicySummary,
  RuleSummary,
  BudgetSummary,
  MatchedBudget,
} from './policy-set.js'
export { BudgetTracker } from './budget.js'
export type { BudgetResult } from './budget.js'
export { runPolicyCases, formatCaseReport, caseFileSchema } from './cases.js'
export type { CaseReport, CaseResult } from './cases.js'
export { POLICY_CEL_LIMITS, MAX_VALUE_DEPTH, toCelValue } from './environment.js'
export type { ToolKind } from './environment.js'
