/**
 * `/metrics` scraped from the real gateway (issue 5, Done-when): executions with known outcomes
 * (ok, TOOL_DENIED, RUNTIME_ERROR, TOOL_ERROR, APPROVAL_DENIED), inner calls by server, tool and
 * outcome, policy decisions, and human approvals (accepted and declined through MCP elicitation)
 * must move the counters by exactly what the test did. The registry is process-global, so every
 * assertion is a delta between a scrape before and a scrape after.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, listen } from '../../src/gateway/index.js'
import {
  EXECUTION_BUCKETS_SECONDS,
  PROMETHEUS_CONTENT_TYPE,
  renderPrometheus,
} from '../../src/telemetry/index.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { connect, execute, waitForTools } from './helpers.js'

const POLICY = `
rules:
  - id: rec-tools
    effect: allow
    when: tool.server == "rec"
  - id: no-external-mail
    effect: deny
    when: tool.name == "send_email" && !args.to.endsWith("@example.com")
  - id: big-payments-need-a-human
    effect: approve
    when: tool.server == "rec" && tool.name == "pay" && args.amount > 1000
`

/** One scrape: series (`name{labels}` exactly as rendered) → value; plus TYPE lines. */
interface Scrape {
  series: Map<string, number>
  types: Map<string, string>
  text: string
}

function parse(text: string): Scrape {
  const series = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type) {
      types.set(type[1]!, type[2]!)
      continue
    }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line)
    if (!m) throw new Error(`not exposition format: ${line}`)
    expect(series.has(m[1]!), `duplicate series ${m[1]}`).toBe(false)
    series.set(m[1]!, m[2] === '+Inf' ? Infinity : Number(m[2]))
  }
  return { series, types, text }
}

let rt: TestRuntime
let app: FastifyInstance
let url: string
const clients: Client[] = []

async function scrape(): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toBe(PROMETHEUS_CONTENT_TYPE)
  return parse(await res.text())
}

beforeAll(async () => {
  rt = await testRuntime({ recording: true, policy: POLICY })
  await waitForTools(rt, ['rec'])
  app = buildApp({
    config: rt.config,
    engine: rt.engine,
    host: '127.0.0.1',
    insecureDev: true,
    metrics: renderPrometheus,
  })
  const mcpUrl = await listen(app, { host: '127.0.0.1', port: 0, print: () => {} })
  url = mcpUrl.replace(/\/mcp$/, '')
})
afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  await app?.close()
  await rt?.close()
})

async function approver(answer: 'accept' | 'decline'): Promise<Client> {
  const c = await connect(`${url}/mcp`, { elicitation: true })
  clients.push(c)
  c.setRequestHandler(ElicitRequestSchema, async () =>
    answer === 'accept' ? { action: 'accept', content: { approve: true } } : { action: 'decline' },
  )
  return c
}

describe('/metrics after a known workload', () => {
  let before: Scrape
  let after: Scrape
  const delta = (key: string) => (after.series.get(key) ?? 0) - (before.series.get(key) ?? 0)

  beforeAll(async () => {
    before = await scrape()
    const yes = await approver('accept')
    const no = await approver('decline')
    const outcomes = [
      await execute(
        yes,
        'const [a, b] = await Promise.all([tools.rec.read_item({ id: "1" }), tools.rec.read_item({ id: "2" })]); return await tools.rec["get-sum"]({ a: 1, b: 2 })',
      ),
      await execute(yes, 'await tools.rec.send_email({ to: "eve@evil.test", subject: "hi" })'),
      await execute(yes, 'throw new Error("boom")'),
      await execute(yes, 'await tools.rec.fail({ why: "test" })'),
      await execute(yes, 'return await tools.rec.pay({ amount: 5000, to: "bob" })'),
      await execute(no, 'return await tools.rec.pay({ amount: 6000, to: "carol" })'),
    ]
    expect(outcomes.map((o) => (o.ok ? 'ok' : o.error?.code))).toEqual([
      'ok',
      'TOOL_DENIED',
      'RUNTIME_ERROR',
      'TOOL_ERROR',
      'ok',
      'APPROVAL_DENIED',
    ])
    after = await scrape()
  })

  it('counts executions by outcome', () => {
    expect(after.types.get('sluice_executions_total')).toBe('counter')
    expect(delta('sluice_executions_total{outcome="ok"}')).toBe(2)
    expect(delta('sluice_executions_total{outcome="TOOL_DENIED"}')).toBe(1)
    expect(delta('sluice_executions_total{outcome="RUNTIME_ERROR"}')).toBe(1)
    expect(delta('sluice_executions_total{outcome="TOOL_ERROR"}')).toBe(1)
    expect(delta('sluice_executions_total{outcome="APPROVAL_DENIED"}')).toBe(1)
    const total = (s: Scrape) =>
      [...s.series]
        .filter(([k]) => k.startsWith('sluice_executions_total{'))
        .reduce((n, [, v]) => n + v, 0)
    expect(total(after) - total(before)).toBe(6)
  })

  it('counts inner calls by server, tool and outcome', () => {
    const calls = (tool: string, outcome: string) =>
      delta(`sluice_tool_calls_total{server="rec",tool="${tool}",outcome="${outcome}"}`)
    expect(calls('read_item', 'ok')).toBe(2)
    expect(calls('get-sum', 'ok')).toBe(1)
    expect(calls('send_email', 'TOOL_DENIED')).toBe(1)
    expect(calls('fail', 'TOOL_ERROR')).toBe(1)
    expect(calls('pay', 'ok')).toBe(1)
    expect(calls('pay', 'APPROVAL_DENIED')).toBe(1)
    const total = (s: Scrape) =>
      [...s.series]
        .filter(([k]) => k.startsWith('sluice_tool_calls_total{'))
        .reduce((n, [, v]) => n + v, 0)
    expect(total(after) - total(before)).toBe(7)
  })

  it('counts policy decisions and approvals', () => {
    expect(delta('sluice_policy_decisions_total{decision="allow"}')).toBe(4)
    expect(delta('sluice_policy_decisions_total{decision="deny"}')).toBe(1)
    expect(delta('sluice_policy_decisions_total{decision="approve"}')).toBe(2)
    expect(delta('sluice_approvals_total{outcome="accept"}')).toBe(1)
    expect(delta('sluice_approvals_total{outcome="decline"}')).toBe(1)
  })

  it('observes every execution in the duration histogram with cumulative buckets', () => {
    expect(after.types.get('sluice_execution_duration_seconds')).toBe('histogram')
    expect(delta('sluice_execution_duration_seconds_count')).toBe(6)
    expect(delta('sluice_execution_duration_seconds_sum')).toBeGreaterThan(0)
    const bucket = (s: Scrape, le: string) =>
      s.series.get(`sluice_execution_duration_seconds_bucket{le="${le}"}`)
    const les = [...EXECUTION_BUCKETS_SECONDS.map(String), '+Inf']
    const counts = les.map((le) => bucket(after, le))
    expect(counts.every((c) => typeof c === 'number')).toBe(true)
    for (let i = 1; i < counts.length; i++)
      expect(counts[i]!).toBeGreaterThanOrEqual(counts[i - 1]!)
    expect(bucket(after, '+Inf')).toBe(after.series.get('sluice_execution_duration_seconds_count'))
    expect(bucket(after, '+Inf')! - (bucket(before, '+Inf') ?? 0)).toBe(6)
  })

  it('reports the sandbox pool size as the ready sandboxes at scrape time', async () => {
    expect(after.types.get('sluice_sandbox_pool_size')).toBe('gauge')
    // The spare sandbox is re-warmed off the critical path: wait for it, then scrape again.
    for (let i = 0; i < 200 && rt.engine.health().pool.ready < 1; i++)
      await new Promise((r) => setTimeout(r, 10))
    const ready = rt.engine.health().pool.ready
    expect(ready).toBe(1)
    expect((await scrape()).series.get('sluice_sandbox_pool_size')).toBe(ready)
  })

  it('observes the time to acquire a sandbox for every execution', () => {
    expect(after.types.get('sluice_sandbox_acquire_seconds')).toBe('histogram')
    expect(delta('sluice_sandbox_acquire_seconds_count')).toBe(6)
  })

  it('reports each upstream as up', () => {
    expect(after.types.get('sluice_upstream_up')).toBe('gauge')
    expect(after.series.get('sluice_upstream_up{server="rec"}')).toBe(1)
  })
})
