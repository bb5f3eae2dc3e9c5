/**
 * Prometheus metrics: a small registry that renders the text exposition format 0.0.4, and the
 * sluice metrics on it.
 *
 * Why not OTel metrics plus `@opentelemetry/exporter-prometheus`: that needs the SDK's
 * MeterProvider (which only `sdk.ts` may touch), so `/metrics` would be empty whenever export is
 * `none` and in every unit test; the exporter's serializer is not a public API, and it starts its
 * own HTTP server unless told not to. Counters, gauges and fixed-bucket histograms are ~200 lines,
 * render exactly what `/metrics` must serve, cost nothing per call but a Map lookup, and need no
 * set-up. Spans stay OTel; `/metrics` is served by the gateway from `renderPrometheus()`.
 *
 * Cardinality is bounded: each metric keeps at most `maxSeries` label sets (default 1000);
 * observations for further label sets are dropped and counted in
 * `sluice_metrics_dropped_total{metric}`. Label values are capped at 128 characters.
 *
 * @module
 */

/** `Content-Type` of `renderPrometheus()` output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Default cap of label sets per metric. */
export const DEFAULT_MAX_SERIES = 1000
/** Cap of one label value, in UTF-16 code units. */
export const MAX_LABEL_VALUE_CHARS = 128

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export type Labels<L extends string> = { readonly [K in L]: string }

/** One value a gauge or counter callback reports. */
export interface GaugeSample<L extends string> {
  labels: Labels<L>
  value: number
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

/** Escapes a label value: backslash, double quote and line feed (exposition format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function renderLabels(
  names: readonly string[],
  values: readonly string[],
  extra?: [string, string],
): string {
  const pairs = names.map((name, i) => `${name}="${escapeLabelValue(values[i]!)}"`)
  if (extra) pairs.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`)
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
}

abstract class Metric<L extends string> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly L[]
  protected readonly series = new Map<string, { values: string[]; state: unknown }>()
  readonly #maxSeries: number
  readonly #onDrop: (metric: string) => void

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    maxSeries: number,
    onDrop: (metric: string) => void,
  ) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`invalid metric name "${name}"`)
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__'))
        throw new TypeError(`invalid label name "${label}" on ${name}`)
    }
    if (new Set(labelNames).size !== labelNames.length)
      throw new TypeError(`duplicate label name on ${name}`)
    this.name = name
    this.help = help
    this.labelNames = Object.freeze([...labelNames])
    this.#maxSeries = maxSeries
    this.#onDrop = onDrop
  }

  abstract readonly type: 'counter' | 'gauge' | 'histogram'
  protected abstract initial(): unknown
  abstract renderSeries(): string[]

  /** The state of the series for `labels`, created on first use; undefined when over the cap. */
  protected slot(labels: Labels<L>): { values: string[]; state: unknown } | undefined {
    const values = this.labelValues(labels)
    const key = values.join('\u0000')
    let entry = this.series.get(key)
    if (entry === undefined) {
      if (this.series.size >= this.#maxSeries) {
        this.#onDrop(this.name)
        return undefined
      }
      entry = { values, state: this.initial() }
      this.series.set(key, entry)
    }
    return entry
  }

  protected labelValues(labels: Labels<L>): string[] {
    const given = Object.keys(labels ?? {})
    if (
      given.length !== this.labelNames.length ||
      given.some((k) => !(this.labelNames as readonly string[]).includes(k))
    ) {
      throw new TypeError(
        `${this.name} takes labels {${this.labelNames.join(', ')}}, got {${given.join(', ')}}`,
      )
    }
    return this.labelNames.map((name) => {
      const value = String(labels[name])
      return value.length <= MAX_LABEL_VALUE_CHARS
        ? value
        : `${value.slice(0, MAX_LABEL_VALUE_CHARS)}…`
    })
  }

  render(): string {
    const lines = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ]
    // A metric without labels has exactly one series, which exists (at zero) before first use.
    if (this.labelNames.length === 0 && this.series.size === 0) this.slot({} as Labels<L>)
    lines.push(...this.renderSeries())
    return `${lines.join('\n')}\n`
  }
}

export class Counter<L extends string = never> extends Metric<L> {
  readonly type = 'counter'
  readonly #callbacks = new Set<() => Iterable<GaugeSample<L>>>()

  protected initial(): number {
    return 0
  }

  /**
   * Reports totals kept elsewhere at render time (e.g. each upstream's restarts): the reported
   * value replaces the series' value, so a reporter must only ever report a growing total. A
   * callback that throws is skipped. Returns a function that removes the callback.
   */
  addCallback(callback: () => Iterable<GaugeSample<L>>): () => void {
    this.#callbacks.add(callback)
    return () => this.#callbacks.delete(callback)
  }

  override render(): string {
    for (const callback of this.#callbacks) {
      try {
        for (const sample of callback()) {
          const entry = this.slot(sample.labels)
          if (entry && Number.isFinite(sample.value) && sample.value >= 0)
            entry.state = sample.value
        }
      } catch {
        // A broken reporter must not take the whole exposition down.
      }
    }
    return super.render()
  }

  /** Adds `value` (default 1, must be ≥ 0) to the series of `labels`. */
  inc(labels: Labels<L>, value = 1): void {
    if (!(value >= 0) || !Number.isFinite(value))
      throw new TypeError(`${this.name} can only increase by a finite amount ≥ 0`)
    const entry = this.slot(labels)
    if (entry) entry.state = (entry.state as number) + value
  }

  /** Current value of one series (0 when unseen). */
  get(labels: Labels<L>): number {
    return (
      (this.series.get(this.labelValues(labels).join('\u0000'))?.state as number | undefined) ?? 0
    )
  }

  renderSeries(): string[] {
    return [...this.series.values()].map(
      (s) =>
        `${this.name}${renderLabels(this.labelNames, s.values)} ${formatNumber(s.state as number)}`,
    )
  }
}

export class Gauge<L extends string = never> extends Metric<L> {
  readonly type = 'gauge'
  readonly #callbacks = new Set<() => Iterable<GaugeSample<L>>>()

  protected initial(): number {
    return 0
  }

  set(labels: Labels<L>, value: number): void {
    const entry = this.slot(labels)
    if (entry) entry.state = value
  }

  get(labels: Labels<L>): number {
    return (
      (this.series.get(this.labelValues(labels).join('\u0000'))?.state as number | undefined) ?? 0
    )
  }

  /**
   * Reports values at render time (e.g. each upstream's state). A callback that throws is
   * skipped so `/metrics` keeps working. Returns a function that removes the callback.
   */
  addCallback(callback: () => Iterable<GaugeSample<L>>): () => void {
    this.#callbacks.add(callback)
    return () => this.#callbacks.delete(callback)
  }

  override render(): string {
    for (const callback of this.#callbacks) {
      try {
        for (const sample of callback()) this.set(sample.labels, sample.value)
      } catch {
        // A broken reporter must not take the whole exposition down.
      }
    }
    return super.render()
  }

  renderSeries(): string[] {
    return [...this.series.values()].map(
      (s) =>
        `${this.name}${renderLabels(this.labelNames, s.values)} ${formatNumber(s.state as number)}`,
    )
  }
}

interface HistogramState {
  counts: number[]
  sum: number
  count: number
}

export class Histogram<L extends string = never> extends Metric<L> {
  readonly type = 'histogram'
  readonly buckets: readonly number[]

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[],
    maxSeries: number,
    onDrop: (metric: string) => void,
  ) {
    super(name, help, labelNames, maxSeries, onDrop)
    if ((labelNames as readonly string[]).includes('le'))
      throw new TypeError(`histogram ${name} cannot have a label "le"`)
    if (
      buckets.length === 0 ||
      buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))
    ) {
      throw new TypeError(`histogram ${name} needs finite, strictly increasing buckets`)
    }
    this.buckets = Object.freeze([...buckets])
  }

  protected initial(): HistogramState {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 }
  }

  /** Records one observation (seconds for `_seconds` histograms). */
  observe(labels: Labels<L>, value: number): void {
    if (Number.isNaN(value)) return
    const entry = this.slot(labels)
    if (!entry) return
    const state = entry.state as HistogramState
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= this.buckets[i]!) state.counts[i]! += 1
    state.sum += value
    state.count += 1
  }

  renderSeries(): string[] {
    const lines: string[] = []
    for (const s of this.series.values()) {
      const state = s.state as HistogramState
      this.buckets.forEach((bound, i) => {
        lines.push(
          `${this.name}_bucket${renderLabels(this.labelNames, s.values, ['le', formatNumber(bound)])} ${state.counts[i]}`,
        )
      })
      lines.push(
        `${this.name}_bucket${renderLabels(this.labelNames, s.values, ['le', '+Inf'])} ${state.count}`,
      )
      lines.push(
        `${this.name}_sum${renderLabels(this.labelNames, s.values)} ${formatNumber(state.sum)}`,
      )
      lines.push(`${this.name}_count${renderLabels(this.labelNames, s.values)} ${state.count}`)
    }
    return lines
  }
}

export interface RegistryOptions {
  /** Cap of label sets per metric. Default 1000. */
  maxSeries?: number
}

/** A set of metrics rendered together. */
export class MetricsRegistry {
  readonly #metrics = new Map<string, Metric<string>>()
  readonly #maxSeries: number
  readonly #dropped: Counter<'metric'>

  constructor(options: RegistryOptions = {}) {
    this.#maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES
    if (!Number.isSafeInteger(this.#maxSeries) || this.#maxSeries < 1)
      throw new TypeError('maxSeries must be a positive integer')
    this.#dropped = new Counter(
      'sluice_metrics_dropped_total',
      'Observations dropped because a metric reached its label-set cap.',
      ['metric'],
      Number.MAX_SAFE_INTEGER,
      () => undefined,
    )
  }

  #add<M extends Metric<string>>(metric: M): M {
    if (this.#metrics.has(metric.name) || metric.name === this.#dropped.name)
      throw new TypeError(`metric ${metric.name} is already registered`)
    this.#metrics.set(metric.name, metric)
    return metric
  }

  #droppedAny = false
  readonly #onDrop = (metric: string): void => {
    this.#droppedAny = true
    this.#dropped.inc({ metric })
  }

  counter<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ): Counter<L> {
    return this.#add(new Counter<L>(name, help, labelNames, this.#maxSeries, this.#onDrop))
  }

  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ): Gauge<L> {
    return this.#add(new Gauge<L>(name, help, labelNames, this.#maxSeries, this.#onDrop))
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[],
  ): Histogram<L> {
    return this.#add(
      new Histogram<L>(name, help, labelNames, buckets, this.#maxSeries, this.#onDrop),
    )
  }

  /** Every metric in the text exposition format 0.0.4. */
  render(): string {
    const parts = [...this.#metrics.values()].map((m) => m.render())
    if (this.#droppedAny) parts.push(this.#dropped.render())
    return parts.join('')
  }
}

/** Buckets of whole-execution durations, seconds. */
export const EXECUTION_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
] as const
/** Buckets of sandbox acquisition from the pool, seconds (the target is sub-millisecond). */
export const ACQUIRE_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1,
] as const

/** The sluice metrics on one registry. */
export function createSluiceMetrics(options: RegistryOptions = {}) {
  const registry = new MetricsRegistry(options)
  return {
    registry,
    /** `outcome`: `ok` or the error code. */
    executions: registry.counter(
      'sluice_executions_total',
      'Executions of execute_code, by outcome (ok or error code).',
      ['outcome'],
    ),
    executionDuration: registry.histogram(
      'sluice_execution_duration_seconds',
      'Duration of one execution, seconds.',
      [],
      EXECUTION_BUCKETS_SECONDS,
    ),
    /** `outcome`: `ok` or the error code. */
    toolCalls: registry.counter(
      'sluice_tool_calls_total',
      'Inner tool calls, by server, tool and outcome.',
      ['server', 'tool', 'outcome'],
    ),
    /** `decision`: allow, deny, approve. */
    policyDecisions: registry.counter(
      'sluice_policy_decisions_total',
      'Policy decisions for inner calls.',
      ['decision'],
    ),
    /** `outcome`: the approval answer (approved, declined, timeout, …). */
    approvals: registry.counter('sluice_approvals_total', 'Human approvals asked, by outcome.', [
      'outcome',
    ]),
    /** `kind`: the `guardrails.pii.detect` name; `boundary`: model or guest. */
    piiDetections: registry.counter(
      'sluice_pii_detections_total',
      'PII and secret values found on their way to the model or the guest, by kind and boundary.',
      ['kind', 'boundary'],
    ),
    /** `kind` as above: tokens turned back into values for a `resolveFor` tool. */
    piiResolved: registry.counter(
      'sluice_pii_resolved_total',
      'PII tokens resolved to their values in the arguments of a resolveFor tool, by kind.',
      ['kind'],
    ),
    poolSize: registry.gauge('sluice_sandbox_pool_size', 'Prewarmed sandboxes ready in the pool.'),
    executionsRunning: registry.gauge('sluice_executions_running', 'Executions running now.'),
    /** `result`: ok (a new config is in force) or error (refused; the old one stays). */
    configReloads: registry.counter(
      'sluice_config_reloads_total',
      'Config reloads (file change or SIGHUP), by result.',
      ['result'],
    ),
    executionsQueued: registry.gauge(
      'sluice_executions_queued',
      'Executions waiting for a slot (limits.maxConcurrentExecutions).',
    ),
    /** `reason`: OVERLOADED, RATE_LIMITED or CANCELLED (while waiting). */
    executionRejections: registry.counter(
      'sluice_execution_rejections_total',
      'Executions refused before they started, by reason.',
      ['reason'],
    ),
    executionQueueWait: registry.histogram(
      'sluice_execution_queue_wait_seconds',
      'Time an admitted execution waited for a slot, seconds.',
      [],
      EXECUTION_BUCKETS_SECONDS,
    ),
    templateFallbacks: registry.counter(
      'sluice_sandbox_template_fallbacks_total',
      'Sandbox instance templates that failed (each replaced its worker; later instances are built in full).',
    ),
    sandboxAcquire: registry.histogram(
      'sluice_sandbox_acquire_seconds',
      'Time to acquire a fresh sandbox from the pool, seconds.',
      [],
      ACQUIRE_BUCKETS_SECONDS,
    ),
    /** 1 when the upstream is connected, 0 otherwise; usually reported by a callback. */
    upstreamUp: registry.gauge(
      'sluice_upstream_up',
      'Whether each upstream MCP server is connected (1) or not (0).',
      ['server'],
    ),
    /** Connect attempts after the first, per upstream (respawns, reconnects); by a callback. */
    upstreamRestarts: registry.counter(
      'sluice_upstream_restarts_total',
      'Connect attempts to each upstream MCP server after the first (respawns and reconnects, successful or not).',
      ['server'],
    ),
    render: () => registry.render(),
  }
}

export type SluiceMetrics = ReturnType<typeof createSluiceMetrics>

/** The process-wide sluice metrics. */
export const metrics: SluiceMetrics = createSluiceMetrics()

/** The process-wide metrics in the text exposition format 0.0.4 (serve with `PROMETHEUS_CONTENT_TYPE`). */
export function renderPrometheus(): string {
  return metrics.render()
}
