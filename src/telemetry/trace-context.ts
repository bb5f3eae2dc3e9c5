/**
 * W3C trace context in and out, done by hand rather than through the global propagator so that
 * nothing but `traceparent` (and our own `tracestate`) can ever travel: baggage is never read and
 * never written, whatever propagators are registered (EXF-07). The same carrier goes into HTTP
 * headers and into MCP `params._meta` (SEP-414; the only carrier for stdio upstreams).
 *
 * @module
 */
import {
  context,
  createTraceState,
  isSpanContextValid,
  ROOT_CONTEXT,
  trace,
  type Context,
} from '@opentelemetry/api'

/** What goes into upstream HTTP headers and MCP `_meta`: never `baggage`. */
export interface TraceCarrier {
  traceparent?: string
  tracestate?: string
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const MAX_TRACESTATE_CHARS = 512

/**
 * The trace context of `ctx` (default: the active one) as `{ traceparent, tracestate? }`; empty
 * when there is no valid span context (no SDK, or outside any span).
 */
export function injectTraceContext(ctx: Context = context.active()): TraceCarrier {
  const span = trace.getSpanContext(ctx)
  if (span === undefined || !isSpanContextValid(span)) return {}
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, '0')
  const carrier: TraceCarrier = { traceparent: `00-${span.traceId}-${span.spanId}-${flags}` }
  const state = span.traceState?.serialize()
  if (state) carrier.tracestate = state
  return carrier
}

export interface ExtractOptions {
  /**
   * Keep the caller's `tracestate`. Default false: it would be inherited by our spans and
   * forwarded to every upstream, a channel the caller controls.
   */
  keepTraceState?: boolean
  /** Context to put the remote parent into. Default ROOT_CONTEXT (nothing else inherited). */
  base?: Context
}

function first(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/**
 * A context whose parent is the caller's `traceparent` (HTTP headers or MCP `_meta`; keys are
 * matched lower-case). An absent or malformed `traceparent` gives `base` unchanged, so our spans
 * start a new trace. Several `traceparent` values (an array) are invalid per W3C and ignored.
 */
export function extractTraceContext(
  carrier: Readonly<Record<string, unknown>>,
  options: ExtractOptions = {},
): Context {
  const base = options.base ?? ROOT_CONTEXT
  const header = first(carrier.traceparent)?.trim().toLowerCase()
  const match = header === undefined ? null : TRACEPARENT.exec(header)
  if (!match) return base
  const [, version, traceId, spanId, flags, rest] = match
  // Version ff is invalid; version 00 has no extra fields; later versions may append some.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return base
  const spanContext = {
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: Number.parseInt(flags!, 16) & 0x01,
    isRemote: true,
  }
  if (!isSpanContextValid(spanContext)) return base
  const rawState = Array.isArray(carrier.tracestate)
    ? carrier.tracestate.filter((s) => typeof s === 'string').join(',')
    : first(carrier.tracestate)
  if (options.keepTraceState && rawState && rawState.length <= MAX_TRACESTATE_CHARS) {
    return trace.setSpanContext(base, { ...spanContext, traceState: createTraceState(rawState) })
  }
  return trace.setSpanContext(base, spanContext)
}

/** The trace id of `ctx` (default: active) for log lines and audit records, if any. */
export function currentTraceId(ctx: Context = context.active()): string | undefined {
  const span = trace.getSpanContext(ctx)
  return span !== undefined && isSpanContextValid(span) ? span.traceId : undefined
}
