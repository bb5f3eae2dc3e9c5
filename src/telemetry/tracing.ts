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
 * Runs `fn` inside a new active span: children created in `fn` (also across awaits) nest under
 * it. A throw marks the span failed (`setSpanError`) and is rethrown; the span always ends.
 *
 * @example
 * const result = await withSpan('execute_tool crm.find', { kind: 'client',
 *   attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'find' } },
 *   async (span) => { … setSafeAttributes(span, { 'sluice.result.bytes': n }) … })
 */
export function withSpan<T>(
  name: string,
  options: WithSpanOptions,
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  const attributes = options.attributes ? filterAttributes(options.attributes) : {}
  const parent = options.parent ?? context.active()
  return getTracer().startActiveSpan(
    name,
    { kind: KINDS[options.kind ?? 'internal'], attributes },
    parent,
    async (span) => {
      try {
        return await fn(span)
      } catch (error) {
        setSpanError(span, error)
        throw error
      } finally {
        span.end()
      }
    },
  )
}
