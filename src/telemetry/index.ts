/**
 * Telemetry through the OpenTelemetry API only: the tracer, `withSpan`, the span attribute
 * allowlist, W3C trace context without baggage, and the Prometheus metrics behind `/metrics`.
 * The SDK (exporters, providers) lives in `./sdk.ts`, which only the composition root imports.
 *
 * @module
 */
export {
  ALLOWED_ATTRIBUTES,
  DEFAULT_MAX_CONTENT_CHARS,
  MAX_ATTRIBUTE_CHARS,
  attributePolicy,
  configureAttributes,
  filterAttributes,
  setSafeAttributes,
} from './attributes.js'
export type { AllowedAttribute, AttributePolicy, SafeAttributes } from './attributes.js'
export { TRACER_NAME, errorType, getTracer, setSpanError, withSpan } from './tracing.js'
export type { SpanKindName, WithSpanOptions } from './tracing.js'
export { currentTraceId, extractTraceContext, injectTraceContext } from './trace-context.js'
export type { ExtractOptions, TraceCarrier } from './trace-context.js'
export {
  ACQUIRE_BUCKETS_SECONDS,
  Counter,
  DEFAULT_MAX_SERIES,
  EXECUTION_BUCKETS_SECONDS,
  Gauge,
  Histogram,
  MAX_LABEL_VALUE_CHARS,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
  createSluiceMetrics,
  escapeLabelValue,
  metrics,
  renderPrometheus,
} from './metrics.js'
export type { GaugeSample, Labels, RegistryOptions, SluiceMetrics } from './metrics.js'
export type { Span } from '@opentelemetry/api'
