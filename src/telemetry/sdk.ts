/**
 * The one file that touches the OpenTelemetry SDK: builds and registers a NodeSDK for traces.
 * Import it only from the composition root, first, so the provider is registered before spans
 * are made (everything else uses `@opentelemetry/api`, a no-op until then).
 *
 * Choices: W3C trace context is the only propagator (no baggage: EXF-07); no auto-instrumentations
 * (spans are made deliberately, with allowlisted attributes); no metric or log pipelines (metrics
 * are served by `/metrics`, see metrics.ts), so `OTEL_METRICS_EXPORTER` cannot start a server.
 * OTLP goes over HTTP with JSON bodies; the standard `OTEL_EXPORTER_OTLP_*` variables (endpoint,
 * headers, timeout) apply when the config leaves them unset, and `OTEL_TRACES_SAMPLER`,
 * `OTEL_BSP_*`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SDK_DISABLED` are honoured by the SDK.
 * The SDK and the exporter are imported only when an exporter is on: with `none` (the default
 * without OTEL_* variables) a process start does not load them (≈100–450 ms of imports).
 *
 * @module
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  trace,
  type Context,
  type ContextManager,
} from '@opentelemetry/api'
import type { tracing } from '@opentelemetry/sdk-node'

export type TelemetryExporter = 'otlp' | 'console' | 'none' | 'memory'

export interface TelemetryOptions {
  serviceName: string
  /** `memory` keeps spans in `memoryExporter` (tests); `none` registers nothing. */
  exporter: TelemetryExporter
  /**
   * OTLP base endpoint (as `OTEL_EXPORTER_OTLP_ENDPOINT`; `/v1/traces` is appended) or the full
   * traces URL ending in `/v1/traces`. Default: the env vars, else http://localhost:4318.
   */
  endpoint?: string
  /** Extra OTLP request headers (e.g. an API key read from a secret ref by the caller). */
  headers?: Record<string, string>
}

export interface TelemetryHandle {
  /** Exports pending spans. Resource detection is async, so export waits for it: flush before asserting. */
  forceFlush(): Promise<void>
  /** Flushes, stops the SDK and unregisters the global provider, propagator and context manager. */
  shutdown(): Promise<void>
  /** With `exporter: 'memory'`: the spans exported so far. */
  memoryExporter?: tracing.InMemorySpanExporter
}

const NOOP: TelemetryHandle = {
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
}

function tracesUrl(endpoint: string): string {
  const trimmed = endpoint.replace(/\/+$/, '')
  return trimmed.endsWith('/v1/traces') ? trimmed : `${trimmed}/v1/traces`
}

/**
 * Starts tracing export. Call once per process (a second start without `shutdown` would find the
 * globals taken).
 *
 * @example
 * const telemetry = await startTelemetry({ serviceName: 'sluice', exporter: 'otlp' })
 * try { … } finally { await telemetry.shutdown() }
 */
/**
 * The context manager sluice registers: none that tracks async work. sluice hands every span's
 * context to its children explicitly (`withSpan`, `ExecuteOptions.traceParent`, the dispatcher's
 * `parent`), and Node 20's async context manager (AsyncLocalStorage) installs promise hooks that
 * cost every promise of the process once it is used: ≈20 µs of the main thread per inner call,
 * measured (engine-call, SDK on).
 */
class PassedContextManager implements ContextManager {
  active(): Context {
    return ROOT_CONTEXT
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    _context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return fn.call(thisArg, ...args)
  }

  bind<T>(_context: Context, target: T): T {
    return target
  }

  enable(): this {
    return this
  }

  disable(): this {
    return this
  }
}

export async function startTelemetry(options: TelemetryOptions): Promise<TelemetryHandle> {
  if (options.exporter === 'none') return NOOP
  const [{ core, NodeSDK, resources, tracing }, { OTLPTraceExporter }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
  ])
  let processor: tracing.SpanProcessor
  let memoryExporter: tracing.InMemorySpanExporter | undefined
  switch (options.exporter) {
    case 'memory':
      memoryExporter = new tracing.InMemorySpanExporter()
      processor = new tracing.SimpleSpanProcessor(memoryExporter)
      break
    case 'console':
      processor = new tracing.SimpleSpanProcessor(new tracing.ConsoleSpanExporter())
      break
    case 'otlp':
      processor = new tracing.BatchSpanProcessor(
        new OTLPTraceExporter({
          ...(options.endpoint ? { url: tracesUrl(options.endpoint) } : {}),
          ...(options.headers && Object.keys(options.headers).length > 0
            ? { headers: { ...options.headers } }
            : {}),
        }),
      )
      break
    default:
      throw new TypeError(`unknown telemetry exporter "${String(options.exporter)}"`)
  }
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    contextManager: new PassedContextManager(),
    spanProcessors: [processor],
    textMapPropagator: new core.W3CTraceContextPropagator(),
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
    // Only the env detector: host and process detectors would export host names and command lines.
    resourceDetectors: [resources.envDetector],
  })
  sdk.start()
  let stopped = false
  return {
    ...(memoryExporter ? { memoryExporter } : {}),
    forceFlush: () => processor.forceFlush(),
    async shutdown() {
      if (stopped) return
      stopped = true
      try {
        await sdk.shutdown()
      } finally {
        trace.disable()
        propagation.disable()
        context.disable()
      }
    },
  }
}
