/**
 * The one error class of sluice and its string codes. Every code is documented in docs/errors.md,
 * and a test keeps the two in sync.
 *
 * Three channels, never mixed: misuse of our own APIs throws `TypeError`; anything the model
 * caused becomes an execution result with a `SluiceError` code; protocol faults are JSON-RPC
 * errors. Messages never carry tokens, argument values or upstream bodies.
 *
 * @module
 */

/** Codes the model can see in an execution result (DESIGN.md section 3). */
export const EXECUTION_ERROR_CODES = [
  'SYNTAX_ERROR',
  'RUNTIME_ERROR',
  'TIMEOUT',
  'MEMORY_LIMIT',
  'STACK_LIMIT',
  'OUTPUT_LIMIT',
  'SOURCE_LIMIT',
  'CALL_LIMIT',
  'UNKNOWN_TOOL',
  'TOOL_DENIED',
  'APPROVAL_DENIED',
  'REPLAY_DIVERGED',
  'TOOL_ERROR',
  'TOOL_TIMEOUT',
  'INVALID_ARGS',
  'QUARANTINED',
  'BUDGET_EXCEEDED',
  'CANCELLED',
  'OVERLOADED',
  'RATE_LIMITED',
  'TASK_LIMIT',
  'INTERNAL',
] as const

/** Codes of operator-facing failures: configuration, start-up, CLI and edge. */
export const OPERATOR_ERROR_CODES = [
  'CONFIG_INVALID',
  'POLICY_INVALID',
  'LOCK_INVALID',
  'SIGNATURE_INVALID',
  'BINDINGS_INVALID',
  'AUDIT_INVALID',
  'AUDIT_UNAVAILABLE',
  'AUDIT_LOCKED',
  'AUTH_REQUIRED',
  'AUTH_INVALID',
  'AUTH_FORBIDDEN',
  'GRANT_FAILED',
  'UPSTREAM_UNAVAILABLE',
  'STORE_UNAVAILABLE',
  'REGISTRY_UNAVAILABLE',
  'REGISTRY_INVALID',
  'REGISTRY_NOT_FOUND',
  'DIFF_UNAVAILABLE',
  'VAULT_CONTENDED',
  'VAULT_UNREADABLE',
  'USAGE',
] as const

export type ExecutionErrorCode = (typeof EXECUTION_ERROR_CODES)[number]
export type OperatorErrorCode = (typeof OPERATOR_ERROR_CODES)[number]
export type ErrorCode = ExecutionErrorCode | OperatorErrorCode

const ALL_CODES: ReadonlySet<string> = new Set([...EXECUTION_ERROR_CODES, ...OPERATOR_ERROR_CODES])

/** Returns true when `code` is one of sluice's error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && ALL_CODES.has(code)
}

export interface SluiceErrorOptions {
  cause?: unknown
  /** 1-based line in the model's source, for execution errors. */
  line?: number
  /** 1-based column in the model's source, for execution errors. */
  column?: number
  /** Structured, secret-free detail (a config path, a rule id, a JSON pointer). */
  details?: Readonly<Record<string, unknown>>
}

/**
 * The one error class. `code` is stable and documented; `message` is safe to show to whoever
 * caused the error (the model for execution codes, the operator for the others).
 */
export class SluiceError extends Error {
  override readonly name = 'SluiceError'
  readonly code: ErrorCode
  readonly line?: number
  readonly column?: number
  readonly details?: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, options: SluiceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    if (options.line !== undefined) this.line = options.line
    if (options.column !== undefined) this.column = options.column
    if (options.details !== undefined) this.details = options.details
  }
}

/** Narrows an unknown thrown value to a SluiceError, optionally of one code. */
export function isSluiceError(value: unknown, code?: ErrorCode): value is SluiceError {
  return value instanceof SluiceError && (code === undefined || value.code === code)
}
