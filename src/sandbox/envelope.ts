/**
 * The host's checks on what the guest prelude reports. The prelude runs in the same realm as
 * the model's code, so its reports are data to verify, not facts: sizes are measured here, codes
 * come from a fixed list, positions must fall inside the model's program, messages are clipped
 * and cleaned of invisible characters before they reach the model, the audit or a metric label.
 *
 * @module
 */
import { EXECUTION_ERROR_CODES } from '../errors.js'
import { cleanMessage, stripInvisible } from '../text.js'
import type { SandboxError, SandboxLimits, SandboxWarning } from './types.js'

const CODES: ReadonlySet<string> = new Set(EXECUTION_ERROR_CODES)
/** Codes the serialiser itself may end with; anything else it says is a RUNTIME_ERROR. */
const SERIALIZE_CODES: ReadonlySet<string> = new Set([
  'OUTPUT_LIMIT',
  'RUNTIME_ERROR',
  'MEMORY_LIMIT',
  'STACK_LIMIT',
])
/** Codes only the engine's own limits produce: the guest may report them, the host confirms. */
const ENGINE_CODES: ReadonlySet<string> = new Set(['TIMEOUT'])

/** Warning codes the prelude may report; others are dropped. */
export const WARNING_CODES = [
  'PROMISE_IN_RESULT',
  'MAP_IN_RESULT',
  'SET_IN_RESULT',
  'FUNCTION_IN_RESULT',
  'ERROR_IN_RESULT',
  'GETTER_IN_RESULT',
  'TOJSON_IN_RESULT',
  'PROXY_IN_RESULT',
] as const
const WARNINGS: ReadonlySet<string> = new Set(WARNING_CODES)
/** Warnings kept per execution. */
export const MAX_WARNINGS = 10
const MAX_PATH_CHARS = 200

/** Where the model's code sits in what the guest evaluated. */
export interface ProgramShape {
  /** Lines of the transpiled program (the body inside the wrapper). */
  lines: number
  /** Characters the wrapper adds in front of line 1. */
  headColumns: number
}

/** A position in the transpiled program, already checked to lie inside it. */
export interface JsPosition {
  line: number
  column: number
}

export type CheckedResult =
  | { ok: true; resultJson?: string; warnings: SandboxWarning[] }
  | { ok: false; error: SandboxError; warnings: SandboxWarning[] }

const internal = (message: string): SandboxError => ({ code: 'INTERNAL', message })

/** Checks the serialiser's report on the result: size, nesting, codes, warnings. */
export function checkSerialized(
  text: string,
  limits: Pick<SandboxLimits, 'maxOutputBytes' | 'maxOutputDepth'>,
): CheckedResult {
  let report: unknown
  try {
    report = JSON.parse(text)
  } catch {
    return { ok: false, error: internal('the sandbox returned an unreadable result'), warnings: [] }
  }
  if (report === null || typeof report !== 'object') {
    return { ok: false, error: internal('the sandbox returned an unreadable result'), warnings: [] }
  }
  const r = report as Record<string, unknown>
  const warnings = checkWarnings(r.warnings)
  if (r.ok !== true) {
    const code =
      typeof r.code === 'string' && SERIALIZE_CODES.has(r.code) ? r.code : 'RUNTIME_ERROR'
    const message =
      typeof r.message === 'string' ? cleanMessage(r.message) : 'the result could not be read'
    return { ok: false, error: outputError(code, message, limits), warnings }
  }
  if (r.json === undefined) return { ok: true, warnings }
  if (typeof r.json !== 'string') {
    return { ok: false, error: internal('the sandbox returned an unreadable result'), warnings }
  }
  const bytes = Buffer.byteLength(r.json)
  if (bytes > limits.maxOutputBytes) {
    return {
      ok: false,
      error: {
        code: 'OUTPUT_LIMIT',
        message: `the result is ${bytes} bytes once serialised, over the limit of ${limits.maxOutputBytes}`,
      },
      warnings,
    }
  }
  if (jsonDepthOver(r.json, limits.maxOutputDepth)) {
    return {
      ok: false,
      error: {
        code: 'OUTPUT_LIMIT',
        message: `the result is nested deeper than ${limits.maxOutputDepth} levels`,
      },
      warnings,
    }
  }
  return { ok: true, resultJson: r.json, warnings }
}

function outputError(
  code: string,
  message: string,
  limits: Pick<SandboxLimits, 'maxOutputBytes'>,
): SandboxError {
  // The guest stops early with a short reason; the host states the bound.
  if (code === 'OUTPUT_LIMIT' && message === 'the result is too large') {
    return {
      code,
      message: `the result is larger than ${limits.maxOutputBytes} bytes once serialised`,
    }
  }
  return { code, message }
}

function checkWarnings(value: unknown): SandboxWarning[] {
  if (!Array.isArray(value)) return []
  const out: SandboxWarning[] = []
  for (const w of value.slice(0, MAX_WARNINGS)) {
    if (w === null || typeof w !== 'object') continue
    const { code, message, path } = w as Record<string, unknown>
    if (typeof code !== 'string' || !WARNINGS.has(code) || typeof message !== 'string') continue
    out.push({
      code,
      message: cleanMessage(message),
      ...(typeof path === 'string' ? { path: stripInvisible(path).slice(0, MAX_PATH_CHARS) } : {}),
    })
  }
  return out
}

/**
 * Checks the prelude's description of a thrown value. `timedOut` is the host's own clock: a
 * guest that claims TIMEOUT before its deadline gets RUNTIME_ERROR.
 */
export function checkDescribed(
  text: string,
  program: ProgramShape,
  timedOut: boolean,
): { error: SandboxError; at?: JsPosition } {
  let report: unknown
  try {
    report = JSON.parse(text)
  } catch {
    return { error: internal('the sandbox returned an unreadable error') }
  }
  const r = (report !== null && typeof report === 'object' ? report : {}) as Record<string, unknown>
  let code = typeof r.code === 'string' && CODES.has(r.code) ? r.code : 'RUNTIME_ERROR'
  if (ENGINE_CODES.has(code) && !timedOut) code = 'RUNTIME_ERROR'
  const message =
    typeof r.message === 'string' ? cleanMessage(r.message) : 'the code threw an exception'
  const at = typeof r.stack === 'string' ? positionIn(r.stack, program) : undefined
  return at === undefined ? { error: { code, message } } : { error: { code, message }, at }
}

const MODEL_FRAME = /model\.ts:(\d{1,9})(?::(\d{1,9}))?/

/** The first `model.ts:LINE:COL` of a stack that lies inside the model's program. */
export function positionIn(stack: string, program: ProgramShape): JsPosition | undefined {
  const m = MODEL_FRAME.exec(stack)
  if (m === null) return undefined
  const line = Number(m[1])
  let column = m[2] === undefined ? 1 : Number(m[2])
  if (!Number.isSafeInteger(line) || line < 1 || line > program.lines) return undefined
  if (line === 1) column -= program.headColumns
  if (!Number.isSafeInteger(column) || column < 1) column = 1
  return { line, column }
}

/** Whether JSON text nests arrays and objects deeper than `max`. */
export function jsonDepthOver(json: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > max) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}
