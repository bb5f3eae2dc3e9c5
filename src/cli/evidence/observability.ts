/**
 * Observability domain: the trace exporter as configured (OBS-1), and the metrics the gateway
 * serves, rendered from a fresh registry of the same module (OBS-2).
 *
 * @module
 */
import { effectiveExporter, type Config } from '../../config/index.js'
import { createSluiceMetrics } from '../../telemetry/index.js'
import type { Control } from './types.js'
import { configName, safeUrl } from './util.js'

export interface TelemetryFacts {
  exporter: string
  endpoint?: string
  headerNames: string[]
  captureContent: boolean
  otelEnvEndpoint?: string
}

export interface MetricsFacts {
  /** Families the control names, each with whether the rendered exposition declares it. */
  families: Array<{ name: string; present: boolean }>
  /** Families in the exposition (`# TYPE` lines). */
  rendered: number
}

/** What OBS-2 promises: executions, inner calls, decisions, approvals, sandbox pool, upstream health. */
export const REQUIRED_METRICS = [
  'sluice_executions_total',
  'sluice_tool_calls_total',
  'sluice_policy_decisions_total',
  'sluice_approvals_total',
  'sluice_sandbox_pool_size',
  'sluice_upstream_up',
] as const

export function telemetryFacts(config: Config): TelemetryFacts {
  const tel = config.telemetry
  const env =
    process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ?? process.env['OTEL_EXPORTER_OTLP_ENDPOINT']
  return {
    exporter: effectiveExporter(tel),
    ...(tel.endpoint ? { endpoint: safeUrl(tel.endpoint) } : {}),
    headerNames: Object.keys(tel.headers).sort(),
    captureContent: tel.captureContent,
    ...(env ? { otelEnvEndpoint: safeUrl(env) } : {}),
  }
}

/** `render` defaults to a fresh registry's; a parameter so a test can hand it a broken one. */
export function metricsFacts(render = () => createSluiceMetrics().render()): MetricsFacts {
  const types = new Set([...render().matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!))
  return {
    families: REQUIRED_METRICS.map((name) => ({ name, present: types.has(name) })),
    rendered: types.size,
  }
}

export function observabilityDomain(
  config: Config,
  tel: TelemetryFacts,
  met: MetricsFacts,
): Control[] {
  const exporting = tel.exporter !== 'none'
  const missing = met.families.filter((f) => !f.present).map((f) => f.name)
  return [
    {
      id: 'OBS-1',
      domain: 'observability',
      control:
        'A trace span per MCP request, per execution and per inner call (OpenTelemetry, allowlisted attributes)',
      status: exporting ? 'enforced' : 'partial',
      observed: `read telemetry in ${configName(config)} and OTEL_EXPORTER_OTLP_*ENDPOINT in this environment`,
      evidence: [
        `trace exporter: ${tel.exporter}${tel.endpoint ? ` → ${tel.endpoint}` : ''}${tel.headerNames.length ? ` (headers: ${tel.headerNames.join(', ')})` : ''}`,
        ...(tel.otelEnvEndpoint
          ? [`OTEL_EXPORTER_OTLP_*ENDPOINT in this environment: ${tel.otelEnvEndpoint}`]
          : []),
        ...(exporting ? [] : ['spans are made but not exported (telemetry.exporter: none)']),
        `content capture: ${tel.captureContent ? 'ON (code, arguments and results recorded)' : 'off (hashes and sizes only)'}`,
      ],
    },
    {
      id: 'OBS-2',
      domain: 'observability',
      control:
        'Metrics: executions, inner calls by server/tool/outcome, decisions, approvals, sandbox pool, upstream health',
      status: missing.length === 0 ? 'enforced' : 'partial',
      observed: `rendered a fresh registry of the metrics GET /metrics serves: ${met.rendered} families, ${met.families.length - missing.length}/${met.families.length} of those named here`,
      evidence: [
        'GET /metrics on the gateway (Prometheus text exposition 0.0.4)',
        ...met.families.map((f) => `${f.name}: ${f.present ? 'declared' : 'MISSING'}`),
      ],
    },
  ]
}
