/**
 * Spans through the OTel API only. With no SDK registered (unit tests, `exporter: none`) every
 * call here is a cheap no-op; `sdk.ts` registers the real provider at start.
 *
 * @module
 */
import {
  context,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api'
import { isSluiceError } from '../errors.js'
import { filterAttributes, setSafeAttributes, type SafeAttributes } from './attributes.js'

/** Instrumentation scope name of every sluice span. */
export const TRACER_NAME = 'sluice'

/** The sluice tracer (from whatever provider is registered when called). */
export function getTracer(): Tracer {
  return trace.getTracer(TRACER_NAME)
}

export type SpanKindName = 'internal' | 'server' | 'client'

const KINDS: Record<SpanKindName, SpanKind> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
}

export interface WithSpanOptions {
  /** Default `internal`. */
  kind?: SpanKindName
  /** Filtered through the allowlist before the span starts. */
  attributes?: SafeAttributes
  /** Parent context (e.g. from `extractTraceContext`); default the active context. */
  parent?: Context
}

/**
 * The error type a span records for `error`: a SluiceError's code, else the error's class name
 * (`error.type` semantics), else `_OTHER`.
 */
export function errorType(error: unknown): string {
  if (isSluiceError(error)) return error.code
  if (error instanceof Error && /^[A-Za-z][A-Za-z0-9_.]{0,63}$/.test(error.name)) return error.name
  return '_OTHER'
}

/**
 * Marks `span` failed with `error.type`, status ERROR and an `exception` event. Only a
 * SluiceError's message is exported (those are written to be safe to show); other messages and
 * every stack stay out, because they can echo arguments or host paths. A string is taken as the
 * error code itself (for results that failed without a throw).
 */
export function setSpanError(span: Span, error: unknown): void {
  const type = typeof error === 'string' ? error : errorType(error)
  setSafeAttributes(span, { 'error.type': type })
  span.setStatus({ code: SpanStatusCode.ERROR, message: type })
  if (span.isRecording()) {
    span.recordException(
      isSluiceError(error) ? { name: type, message: error.message } : { name: type },
    )
  }
}

/**
 * Runs `fn` in a new span, a child of `options.parent` (default the active context), and gives
 * it the span and the context to parent its own work on. The context is passed, not made
 * active: sluice registers no async context manager (sdk.ts), so what nests under the span is
 * what `fn` hands the context to. A throw marks the span failed (`setSpanError`) and is
 * rethrown; the span always ends.
 *
 * @example
 * const result = await withSpan('tools/call execute_code', { kind: 'server' },
 *   async (span, traceParent) => engine.execute(principal, code, { traceParent }))
 */
export async function withSpan<T>(
  name: string,
  options: WithSpanOptions,
  fn: (span: Span, context: Context) => Promise<T> | T,
): Promise<T> {
  const attributes = options.attributes ? filterAttributes(options.attributes) : {}
  const parent = options.parent ?? context.active()
  const span = getTracer().startSpan(
    name,
    { kind: KINDS[options.kind ?? 'internal'], attributes },
    parent,
  )
  try {
    return await fn(span, trace.setSpan(parent, span))
  } catch (error) {
    setSpanError(span, error)
    throw error
  } finally {
    span.end()
  }
}
