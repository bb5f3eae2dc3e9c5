/**
 * W3C trace context in and out (EXF-07): only traceparent (and, on request, tracestate) travels;
 * baggage never does.
 */
import { ROOT_CONTEXT, TraceFlags, createTraceState, trace } from '@opentelemetry/api'
import { describe, expect, it } from 'vitest'
import {
  currentTraceId,
  extractTraceContext,
  injectTraceContext,
} from '../../src/telemetry/index.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const SPAN_ID = '00f067aa0ba902b7'
const PARENT = `00-${TRACE_ID}-${SPAN_ID}-01`

describe('injectTraceContext', () => {
  it('is empty outside any span', () => {
    expect(injectTraceContext(ROOT_CONTEXT)).toEqual({})
  })

  it('writes traceparent and our tracestate, never baggage', () => {
    const ctx = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: TraceFlags.SAMPLED,
      traceState: createTraceState('sluice=1'),
    })
    expect(injectTraceContext(ctx)).toEqual({ traceparent: PARENT, tracestate: 'sluice=1' })
    expect(currentTraceId(ctx)).toBe(TRACE_ID)
  })
})

describe('extractTraceContext', () => {
  it('continues the caller trace from traceparent', () => {
    const ctx = extractTraceContext({ traceparent: PARENT })
    expect(trace.getSpanContext(ctx)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
      isRemote: true,
    })
    expect(injectTraceContext(ctx)).toEqual({ traceparent: PARENT })
  })

  it('EXF-07 ignores baggage and drops the caller tracestate by default', () => {
    const ctx = extractTraceContext({
      traceparent: PARENT,
      tracestate: 'evil=exfil',
      baggage: 'secret=CANARY',
    })
    expect(injectTraceContext(ctx)).toEqual({ traceparent: PARENT })
    const kept = extractTraceContext(
      { traceparent: PARENT, tracestate: 'vendor=1' },
      { keepTraceState: true },
    )
    expect(injectTraceContext(kept)).toEqual({ traceparent: PARENT, tracestate: 'vendor=1' })
  })

  it('ignores malformed, all-zero, version ff and repeated traceparents', () => {
    for (const traceparent of [
      'garbage',
      `00-${'0'.repeat(32)}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `ff-${TRACE_ID}-${SPAN_ID}-01`,
      `00-${TRACE_ID}-${SPAN_ID}-01-extra`,
      [PARENT, PARENT],
    ]) {
      expect(extractTraceContext({ traceparent })).toBe(ROOT_CONTEXT)
    }
  })

  it('accepts a future version with extra fields, and upper case', () => {
    expect(
      currentTraceId(extractTraceContext({ traceparent: `01-${TRACE_ID}-${SPAN_ID}-01-more` })),
    ).toBe(TRACE_ID)
    expect(currentTraceId(extractTraceContext({ traceparent: PARENT.toUpperCase() }))).toBe(
      TRACE_ID,
    )
  })
})
