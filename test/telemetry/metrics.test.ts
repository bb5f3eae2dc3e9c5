/**
 * Prometheus metrics: counts match what was done, and the exposition parses (a tiny parser of
 * text format 0.0.4 below checks HELP/TYPE, samples, escaping and histogram invariants).
 */
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_MAX_SERIES,
  MAX_LABEL_VALUE_CHARS,
  MetricsRegistry,
  createSluiceMetrics,
  metrics,
  renderPrometheus,
} from '../../src/telemetry/index.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

interface Family {
  type: string
  help: string
  samples: Sample[]
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {}
  let i = 0
  while (i < text.length) {
    const eq = text.indexOf('=', i)
    if (eq < 0 || text[eq + 1] !== '"') throw new Error(`bad labels: ${text}`)
    const name = text.slice(i, eq)
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name: ${name}`)
    let value = ''
    let j = eq + 2
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const next = text[++j]
        if (next === 'n') value += '\n'
        else if (next === '\\' || next === '"') value += next
        else throw new Error(`bad escape \\${next}`)
      } else value += text[j]
    }
    if (text[j] !== '"') throw new Error(`unterminated label value: ${text}`)
    labels[name] = value
    i = j + 1
    if (text[i] === ',') i++
    else if (i !== text.length) throw new Error(`bad separator in labels: ${text}`)
  }
  return labels
}

function parseNumber(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  if (text === 'NaN') return Number.NaN
  if (!/^-?\d+(\.\d+)?(e[+-]?\d+)?$/.test(text)) throw new Error(`bad number: ${text}`)
  return Number(text)
}

/** Parses text exposition 0.0.4 strictly enough to catch a malformed renderer. */
function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline')
  const families = new Map<string, Family>()
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (meta) {
      const [, kind, name, rest] = meta
      const family = families.get(name!) ?? { type: '', help: '', samples: [] }
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram'].includes(rest!)) throw new Error(`bad type ${rest}`)
        family.type = rest!
      } else family.help = rest!
      families.set(name!, family)
      continue
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!sample) throw new Error(`bad line: ${JSON.stringify(line)}`)
    const [, name, labels, value] = sample
    const base = name!.replace(/_(bucket|sum|count)$/, '')
    const family = families.get(name!) ?? families.get(base)
    if (!family?.type) throw new Error(`sample ${name} before its TYPE`)
    if (family.type !== 'histogram' && !families.has(name!))
      throw new Error(`sample ${name} of a non-histogram with a suffix`)
    family.samples.push({
      name: name!,
      labels: labels ? parseLabels(labels) : {},
      value: parseNumber(value!),
    })
  }
  for (const [name, family] of families) {
    if (family.type !== 'histogram') continue
    const groups = new Map<string, Sample[]>()
    for (const s of family.samples.filter((x) => x.name === `${name}_bucket`)) {
      const { le: _le, ...rest } = s.labels
      const key = JSON.stringify(rest)
      groups.set(key, [...(groups.get(key) ?? []), s])
    }
    for (const [key, buckets] of groups) {
      const counts = buckets.map((b) => b.value)
      if (counts.some((c, i) => i > 0 && c < counts[i - 1]!))
        throw new Error(`${name} buckets not cumulative`)
      if (buckets.at(-1)?.labels.le !== '+Inf') throw new Error(`${name} lacks +Inf`)
      const count = family.samples.find(
        (s) => s.name === `${name}_count` && JSON.stringify(s.labels) === key,
      )
      if (count?.value !== counts.at(-1)) throw new Error(`${name}_count differs from +Inf bucket`)
    }
  }
  return families
}

function value(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''))
  return family?.samples.find(
    (s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels),
  )?.value
}

describe('sluice metrics', () => {
  it('count what was done and render a parseable exposition', () => {
    const m = createSluiceMetrics()
    m.executions.inc({ outcome: 'ok' })
    m.executions.inc({ outcome: 'ok' })
    m.executions.inc({ outcome: 'TIMEOUT' })
    m.executionDuration.observe({}, 0.004)
    m.executionDuration.observe({}, 0.2)
    m.executionDuration.observe({}, 120)
    m.toolCalls.inc({ server: 'crm', tool: 'find', outcome: 'ok' }, 3)
    m.toolCalls.inc({ server: 'crm', tool: 'find', outcome: 'TOOL_DENIED' })
    m.policyDecisions.inc({ decision: 'deny' })
    m.policyDecisions.inc({ decision: 'approve' })
    m.approvals.inc({ outcome: 'approved' })
    m.poolSize.set({}, 4)
    m.sandboxAcquire.observe({}, 0.0002)
    const states = new Map([
      ['crm', true],
      ['mail', false],
    ])
    m.upstreamUp.addCallback(() =>
      [...states].map(([server, up]) => ({ labels: { server }, value: up ? 1 : 0 })),
    )

    const families = parseExposition(m.render())
    expect(families.get('sluice_executions_total')?.type).toBe('counter')
    expect(value(families, 'sluice_executions_total', { outcome: 'ok' })).toBe(2)
    expect(value(families, 'sluice_executions_total', { outcome: 'TIMEOUT' })).toBe(1)
    expect(value(families, 'sluice_execution_duration_seconds_count')).toBe(3)
    expect(value(families, 'sluice_execution_duration_seconds_sum')).toBeCloseTo(120.204)
    expect(value(families, 'sluice_execution_duration_seconds_bucket', { le: '0.005' })).toBe(1)
    expect(value(families, 'sluice_execution_duration_seconds_bucket', { le: '0.25' })).toBe(2)
    expect(value(families, 'sluice_execution_duration_seconds_bucket', { le: '60' })).toBe(2)
    expect(value(families, 'sluice_execution_duration_seconds_bucket', { le: '+Inf' })).toBe(3)
    expect(
      value(families, 'sluice_tool_calls_total', { server: 'crm', tool: 'find', outcome: 'ok' }),
    ).toBe(3)
    expect(
      value(families, 'sluice_tool_calls_total', {
        server: 'crm',
        tool: 'find',
        outcome: 'TOOL_DENIED',
      }),
    ).toBe(1)
    expect(value(families, 'sluice_policy_decisions_total', { decision: 'deny' })).toBe(1)
    expect(value(families, 'sluice_approvals_total', { outcome: 'approved' })).toBe(1)
    expect(value(families, 'sluice_sandbox_pool_size')).toBe(4)
    expect(value(families, 'sluice_sandbox_acquire_seconds_bucket', { le: '0.00025' })).toBe(1)
    expect(value(families, 'sluice_upstream_up', { server: 'crm' })).toBe(1)
    expect(value(families, 'sluice_upstream_up', { server: 'mail' })).toBe(0)

    states.set('mail', true)
    expect(value(parseExposition(m.render()), 'sluice_upstream_up', { server: 'mail' })).toBe(1)
  })

  it('reads counter totals kept elsewhere at render time, skipping a broken reporter', () => {
    const m = createSluiceMetrics()
    const restarts = new Map([
      ['crm', 0],
      ['mail', 2],
    ])
    const remove = m.upstreamRestarts.addCallback(() =>
      [...restarts].map(([server, value]) => ({ labels: { server }, value })),
    )
    m.upstreamRestarts.addCallback(() => {
      throw new Error('broken reporter')
    })
    let families = parseExposition(m.render())
    expect(families.get('sluice_upstream_restarts_total')?.type).toBe('counter')
    expect(value(families, 'sluice_upstream_restarts_total', { server: 'crm' })).toBe(0)
    expect(value(families, 'sluice_upstream_restarts_total', { server: 'mail' })).toBe(2)

    restarts.set('crm', 3)
    families = parseExposition(m.render())
    expect(value(families, 'sluice_upstream_restarts_total', { server: 'crm' })).toBe(3)

    // Once removed, the last reported total stays; a later report no longer reaches it.
    remove()
    restarts.set('crm', 9)
    families = parseExposition(m.render())
    expect(value(families, 'sluice_upstream_restarts_total', { server: 'crm' })).toBe(3)
  })

  it('renders label-less metrics at zero before first use, labelled ones with no samples', () => {
    const families = parseExposition(createSluiceMetrics().render())
    expect(value(families, 'sluice_execution_duration_seconds_count')).toBe(0)
    expect(value(families, 'sluice_sandbox_pool_size')).toBe(0)
    expect(families.get('sluice_executions_total')).toMatchObject({ type: 'counter', samples: [] })
  })

  it('escapes backslash, quote and newline in label values so each sample stays one line', () => {
    const m = createSluiceMetrics()
    const tool = 'evil"} 1\nsluice_executions_total{outcome="forged'
    m.toolCalls.inc({ server: 'a\\b', tool, outcome: 'ok' })
    const text = m.render()
    expect(text).toContain(
      'server="a\\\\b",tool="evil\\"} 1\\nsluice_executions_total{outcome=\\"forged"',
    )
    const families = parseExposition(text)
    expect(
      value(families, 'sluice_tool_calls_total', { server: 'a\\b', tool, outcome: 'ok' }),
    ).toBe(1)
    expect(families.get('sluice_executions_total')?.samples).toEqual([])
  })

  it('caps a label value at MAX_LABEL_VALUE_CHARS', () => {
    const m = createSluiceMetrics()
    m.approvals.inc({ outcome: 'x'.repeat(MAX_LABEL_VALUE_CHARS) })
    m.approvals.inc({ outcome: 'y'.repeat(MAX_LABEL_VALUE_CHARS + 1) })
    const outcomes = parseExposition(m.render())
      .get('sluice_approvals_total')!
      .samples.map((s) => s.labels.outcome)
    expect(outcomes).toEqual([
      'x'.repeat(MAX_LABEL_VALUE_CHARS),
      `${'y'.repeat(MAX_LABEL_VALUE_CHARS)}…`,
    ])
  })

  it('keeps maxSeries label sets per metric and drops (and counts) the next one', () => {
    const m = createSluiceMetrics({ maxSeries: 3 })
    for (const outcome of ['a', 'b', 'c']) m.executions.inc({ outcome })
    let families = parseExposition(m.render())
    expect(families.get('sluice_executions_total')?.samples).toHaveLength(3)
    expect(families.has('sluice_metrics_dropped_total')).toBe(false)
    m.executions.inc({ outcome: 'd' })
    m.executions.inc({ outcome: 'a' })
    families = parseExposition(m.render())
    expect(
      families.get('sluice_executions_total')?.samples.map((s) => [s.labels.outcome, s.value]),
    ).toEqual([
      ['a', 2],
      ['b', 1],
      ['c', 1],
    ])
    expect(
      value(families, 'sluice_metrics_dropped_total', { metric: 'sluice_executions_total' }),
    ).toBe(1)
    expect(DEFAULT_MAX_SERIES).toBe(1000)
  })

  it('refuses misuse: wrong labels, decreasing counters, bad names, unsorted buckets', () => {
    const m = createSluiceMetrics()
    expect(() => m.toolCalls.inc({ server: 'crm' } as never)).toThrow(
      new TypeError('sluice_tool_calls_total takes labels {server, tool, outcome}, got {server}'),
    )
    expect(() => m.executions.inc({ outcome: 'ok' }, -1)).toThrow(
      new TypeError('sluice_executions_total can only increase by a finite amount ≥ 0'),
    )
    const registry = new MetricsRegistry()
    expect(() => registry.counter('bad-name', 'x')).toThrow(
      new TypeError('invalid metric name "bad-name"'),
    )
    expect(() => registry.histogram('h', 'x', [], [1, 0.5])).toThrow(
      new TypeError('histogram h needs finite, strictly increasing buckets'),
    )
    registry.counter('c_total', 'x')
    expect(() => registry.counter('c_total', 'x')).toThrow(
      new TypeError('metric c_total is already registered'),
    )
  })

  it('the process-wide metrics render every sluice metric', () => {
    metrics.executions.inc({ outcome: 'ok' })
    const families = parseExposition(renderPrometheus())
    expect([...families.keys()].sort()).toEqual([
      'sluice_approvals_total',
      'sluice_config_reloads_total',
      'sluice_execution_duration_seconds',
      'sluice_execution_queue_wait_seconds',
      'sluice_execution_rejections_total',
      'sluice_executions_queued',
      'sluice_executions_running',
      'sluice_executions_total',
      'sluice_pii_detections_total',
      'sluice_pii_resolved_total',
      'sluice_policy_decisions_total',
      'sluice_sandbox_acquire_seconds',
      'sluice_sandbox_pool_size',
      'sluice_sandbox_template_fallbacks_total',
      'sluice_tool_calls_total',
      'sluice_upstream_restarts_total',
      'sluice_upstream_up',
    ])
  })
})
