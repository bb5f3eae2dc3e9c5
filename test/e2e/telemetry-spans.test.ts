/**
 * The exact span tree of one execution (issue 5, Done-when): parallel and sequential inner calls
 * plus a denied one, run through the real engine and once through the real gateway over HTTP with
 * the SDK client. Asserts the names, the parentage (one trace, parentSpanId links), the
 * attributes of every span, and that no argument value, code text or canary secret is in any
 * attribute, event or status. W3C trace context must reach an HTTP upstream in `_meta` and in the
 * request headers, and the caller's `baggage` must not (EXF-07).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js'
import type { tracing } from '@opentelemetry/sdk-node'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { hashArgs } from '../../src/audit/index.js'
import { startTelemetry, type TelemetryHandle } from '../../src/telemetry/sdk.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { startGateway, waitForTools, type Execution, type Gateway } from './helpers.js'

type ReadableSpan = tracing.ReadableSpan

const CANARY_CODE = `code-canary-${randomBytes(12).toString('hex')}`
const CANARY_ARG = `arg-canary-${randomBytes(12).toString('hex')}`
const CANARY_TOKEN = `token-canary-${randomBytes(18).toString('base64url')}`
const CANARY_BAGGAGE = `baggage-canary-${randomBytes(8).toString('hex')}`
const CANARIES = [CANARY_CODE, CANARY_ARG, CANARY_TOKEN, CANARY_BAGGAGE]

const POLICY = `
rules:
  - id: rec-tools
    effect: allow
    when: tool.server == "rec"
  - id: up-tools
    effect: allow
    when: tool.server == "up"
  - id: no-external-mail
    effect: deny
    when: tool.name == "send_email" && !args.to.endsWith("@example.com")
`

/**
 * Two calls in parallel (a barrier on the HTTP upstream answers only once both are in flight, so
 * parallelism is proven without timing), then one sum, then a denied e-mail: 4 inner calls.
 */
const SCRIPT = `
const secret = "${CANARY_CODE}"
const [a, b] = await Promise.all([
  tools.up.barrier({ tag: "${CANARY_ARG}-a" }),
  tools.up.barrier({ tag: "${CANARY_ARG}-b" }),
])
const sum = await tools.rec["get-sum"]({ a: 40, b: 2 })
let denied = "none"
try {
  await tools.rec.send_email({ to: "mallory@evil.test", subject: "${CANARY_ARG}-mail" })
} catch (e) {
  denied = e.code
}
return { a: a.together, b: b.together, sum, denied, n: secret.length }
`
const ARGS = {
  barrierA: { tag: `${CANARY_ARG}-a` },
  barrierB: { tag: `${CANARY_ARG}-b` },
  sum: { a: 40, b: 2 },
  mail: { to: 'mallory@evil.test', subject: `${CANARY_ARG}-mail` },
}

interface UpstreamSeen {
  headers: IncomingHttpHeaders
  meta: unknown
}

/** An in-process Streamable HTTP MCP server that keeps the headers and `_meta` of each tools/call. */
async function startTraceRecorder(): Promise<{
  url: string
  seen: UpstreamSeen[]
  close(): Promise<void>
}> {
  const seen: UpstreamSeen[] = []
  const transports = new Map<string, StreamableHTTPServerTransport>()
  const build = () => {
    const server = new McpServer({ name: 'trace-recorder', version: '1.0.0' })
    server.registerTool(
      'meta',
      { description: 'The _meta of this call', inputSchema: { x: z.string().optional() } },
      async (_args, extra) => ({
        content: [{ type: 'text', text: JSON.stringify(extra._meta ?? null) }],
        structuredContent: { meta: (extra._meta ?? null) as unknown },
      }),
    )
    // Answers once two calls wait (or alone after 10 s, which the test then reports).
    server.registerTool(
      'barrier',
      { description: 'Wait for a second caller', inputSchema: { tag: z.string() } },
      async () => {
        const together = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => {
            waiting.splice(waiting.indexOf(release), 1)
            resolve(false)
          }, 10_000)
          const release = () => {
            clearTimeout(timer)
            resolve(true)
          }
          waiting.push(release)
          if (waiting.length >= 2) for (const r of waiting.splice(0)) r()
        })
        return {
          content: [{ type: 'text', text: JSON.stringify({ together }) }],
          structuredContent: { together },
        }
      },
    )
    return server
  }
  const waiting: Array<() => void> = []
  const http: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const body =
      chunks.length > 0
        ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            method?: string
            params?: { _meta?: unknown }
          })
        : undefined
    if (body?.method === 'tools/call') seen.push({ headers: req.headers, meta: body.params?._meta })
    const sessionId = req.headers['mcp-session-id']
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined
    if (transport === undefined) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(400).end()
        return
      }
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => void transports.set(id, created),
      })
      transport = created
      await build().connect(created)
    }
    await transport.handleRequest(req, res, body)
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const port = (http.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    close: async () => {
      for (const t of transports.values()) await t.close().catch(() => undefined)
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

let telemetry: TelemetryHandle
let rt: TestRuntime
let upstream: Awaited<ReturnType<typeof startTraceRecorder>>

beforeAll(async () => {
  telemetry = await startTelemetry({ serviceName: 'sluice-spans', exporter: 'memory' })
  upstream = await startTraceRecorder()
  rt = await testRuntime({
    recording: true,
    policy: POLICY,
    config: { servers: { up: { url: upstream.url } } },
  })
  await waitForTools(rt, ['rec', 'up'])
})
afterAll(async () => {
  await rt?.close()
  await upstream?.close()
  await telemetry?.shutdown()
})
beforeEach(() => telemetry.memoryExporter!.reset())

async function finishedSpans(): Promise<ReadableSpan[]> {
  await telemetry.forceFlush()
  return telemetry.memoryExporter!.getFinishedSpans()
}

const idOf = (s: ReadableSpan) => s.spanContext().spanId
const traceOf = (s: ReadableSpan) => s.spanContext().traceId
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId

/** Everything a span carries that an exporter would send. */
function exported(s: ReadableSpan): string {
  return JSON.stringify({
    name: s.name,
    attributes: s.attributes,
    events: s.events,
    status: s.status,
    links: s.links,
    resource: s.resource.attributes,
  })
}

/** Asserts the four execute_tool children of `exec` with their attributes. */
function assertInnerCalls(spans: ReadableSpan[], exec: ReadableSpan): void {
  const children = spans.filter((s) => parentOf(s) === idOf(exec))
  expect(children.map((s) => s.name).sort()).toEqual([
    'execute_tool rec.get-sum',
    'execute_tool rec.send_email',
    'execute_tool up.barrier',
    'execute_tool up.barrier',
  ])
  const executionId = exec.attributes['sluice.execution.id']
  expect(typeof executionId).toBe('string')
  for (const child of children) {
    expect(traceOf(child)).toBe(traceOf(exec))
    expect(child.attributes['sluice.execution.id']).toBe(executionId)
    expect(child.attributes['gen_ai.operation.name']).toBe('execute_tool')
    expect(child.attributes['sluice.server']).toBe(child.name.includes(' up.') ? 'up' : 'rec')
    expect(child.attributes['gen_ai.tool.call.id']).toMatch(
      new RegExp(`^${String(executionId)}:\\d+$`),
    )
    expect(child.attributes['sluice.tool.hash']).toMatch(/^sha256:[0-9a-f]{64}$/)
  }
  expect(new Set(children.map((c) => c.attributes['gen_ai.tool.call.id'])).size).toBe(4)
  const parallel = children.filter((s) => s.name === 'execute_tool up.barrier')
  expect(parallel.map((s) => s.attributes['sluice.args.sha256']).sort()).toEqual(
    [hashArgs(ARGS.barrierA), hashArgs(ARGS.barrierB)].sort(),
  )
  for (const span of parallel) {
    expect(Object.keys(span.attributes).sort()).toEqual([
      'gen_ai.operation.name',
      'gen_ai.tool.call.id',
      'gen_ai.tool.name',
      'sluice.args.bytes',
      'sluice.args.sha256',
      'sluice.execution.id',
      'sluice.policy.decision',
      'sluice.policy.rule_id',
      'sluice.result.bytes',
      'sluice.server',
      'sluice.tool.hash',
    ])
    expect(span.attributes).toMatchObject({
      'gen_ai.tool.name': 'up.barrier',
      'sluice.policy.decision': 'allow',
      'sluice.policy.rule_id': 'up-tools',
    })
    expect(span.status.code).toBe(0)
  }
  // The SDK stamps span starts with Date.now() (millisecond precision) and ends with the
  // high-resolution clock, so causal order is checked with a 1 ms allowance.
  const ns = (t: [number, number]) => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])
  const after = (later: ReadableSpan, earlier: ReadableSpan) =>
    ns(later.startTime) + 1_000_000n >= ns(earlier.endTime)

  const sum = children.find((s) => s.name === 'execute_tool rec.get-sum')!
  expect(sum.attributes).toMatchObject({
    'gen_ai.tool.name': 'rec.get-sum',
    'sluice.policy.decision': 'allow',
    'sluice.policy.rule_id': 'rec-tools',
    'sluice.args.sha256': hashArgs(ARGS.sum),
    'sluice.args.bytes': Buffer.byteLength(JSON.stringify(ARGS.sum)),
  })
  // Sequential: the sum starts after both parallel calls ended.
  expect(parallel.every((p) => after(sum, p))).toBe(true)

  const mail = children.find((s) => s.name === 'execute_tool rec.send_email')!
  expect(mail.attributes).toMatchObject({
    'gen_ai.tool.name': 'rec.send_email',
    'sluice.policy.decision': 'deny',
    'sluice.policy.rule_id': 'no-external-mail',
    'sluice.args.sha256': hashArgs(ARGS.mail),
    'error.type': 'TOOL_DENIED',
  })
  expect(mail.attributes['sluice.result.bytes']).toBeUndefined()
  expect(mail.status.code).toBe(2)
  expect(after(mail, sum)).toBe(true)
}

function assertNoCanary(spans: ReadableSpan[]): void {
  for (const span of spans) {
    const text = exported(span)
    for (const canary of CANARIES)
      expect(text, `${span.name} carries a canary`).not.toContain(canary)
    // No argument value in clear either (the sum's operands are too common to search for).
    expect(text).not.toContain('mallory@evil.test')
  }
}

describe('the span tree of one execution', () => {
  it('is execute_code → 4 × execute_tool (parallel, sequential, denied) through the engine', async () => {
    const principal = rt.principal()
    const out = await rt.engine.execute(principal, SCRIPT, { inboundToken: CANARY_TOKEN })
    expect(out).toMatchObject({
      ok: true,
      result: { a: true, b: true, sum: 42, denied: 'TOOL_DENIED' },
    })
    const spans = await finishedSpans()
    expect(spans).toHaveLength(5)
    const roots = spans.filter((s) => parentOf(s) === undefined)
    expect(roots.map((s) => s.name)).toEqual(['execute_code'])
    const exec = roots[0]!
    expect(spans.every((s) => traceOf(s) === traceOf(exec))).toBe(true)
    expect(exec.attributes).toMatchObject({
      'gen_ai.tool.name': 'execute_code',
      'gen_ai.operation.name': 'execute_tool',
      'sluice.code.sha256': hashArgs(SCRIPT),
      'sluice.code.bytes': Buffer.byteLength(SCRIPT),
      'sluice.call.count': 4,
    })
    expect(exec.attributes['error.type']).toBeUndefined()
    expect(exec.status.code).not.toBe(2)
    assertInnerCalls(spans, exec)
    assertNoCanary(spans)
  })

  it('marks a failed execution with error.type and keeps code text out', async () => {
    const out = await rt.engine.execute(
      rt.principal(),
      `const s = "${CANARY_CODE}"; await tools.rec.send_email({ to: "x@evil.test", subject: s })`,
    )
    expect(out.error?.code).toBe('TOOL_DENIED')
    const spans = await finishedSpans()
    const exec = spans.find((s) => s.name === 'execute_code')!
    expect(exec.attributes['error.type']).toBe('TOOL_DENIED')
    expect(exec.status.code).toBe(2)
    expect(spans.filter((s) => parentOf(s) === idOf(exec)).map((s) => s.name)).toEqual([
      'execute_tool rec.send_email',
    ])
    assertNoCanary(spans)
  })

  it('is tools/call execute_code → execute_code → 4 × execute_tool through the gateway over HTTP', async () => {
    const gw: Gateway = await startGateway(rt)
    const client = new Client({ name: 'spans', version: '0.0.1' })
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)))
      const res = await client.callTool({ name: 'execute_code', arguments: { code: SCRIPT } })
      expect(res.structuredContent).toMatchObject({
        ok: true,
        result: { a: true, b: true, sum: 42, denied: 'TOOL_DENIED' },
      })
      const spans = await finishedSpans()
      expect(spans).toHaveLength(6)
      const roots = spans.filter((s) => parentOf(s) === undefined)
      expect(roots.map((s) => s.name)).toEqual(['tools/call execute_code'])
      const server = roots[0]!
      expect(server.kind).toBe(1) // SERVER
      expect(server.attributes).toEqual({
        'mcp.method.name': 'tools/call',
        'gen_ai.tool.name': 'execute_code',
      })
      const execs = spans.filter((s) => parentOf(s) === idOf(server))
      expect(execs.map((s) => s.name)).toEqual(['execute_code'])
      expect(spans.every((s) => traceOf(s) === traceOf(server))).toBe(true)
      assertInnerCalls(spans, execs[0]!)
      assertNoCanary(spans)
    } finally {
      await client.close()
      await gw.close()
    }
  })

  it('continues the caller’s traceparent, ignores its baggage and tracestate', async () => {
    const gw: Gateway = await startGateway(rt)
    const callerTrace = randomBytes(16).toString('hex')
    const callerSpan = randomBytes(8).toString('hex')
    const client = new Client({ name: 'spans', version: '0.0.1' })
    try {
      await client.connect(
        new StreamableHTTPClientTransport(new URL(gw.url), {
          requestInit: {
            headers: {
              traceparent: `00-${callerTrace}-${callerSpan}-01`,
              tracestate: `vendor=${CANARY_BAGGAGE}`,
              baggage: `secret=${CANARY_BAGGAGE}`,
            },
          },
        }),
      )
      upstream.seen.length = 0
      const res = await client.callTool({
        name: 'execute_code',
        arguments: { code: 'return await tools.up.meta({})' },
      })
      const out = res.structuredContent as unknown as Execution
      expect(out.ok).toBe(true)
      const spans = await finishedSpans()
      const server = spans.find((s) => s.name === 'tools/call execute_code')!
      expect(traceOf(server)).toBe(callerTrace)
      expect(parentOf(server)).toBe(callerSpan)
      expect(server.spanContext().traceState).toBeUndefined()
      const exec = spans.find((s) => s.name === 'execute_code')!
      const call = spans.find((s) => s.name === 'execute_tool up.meta')!
      expect(parentOf(exec)).toBe(idOf(server))
      expect(parentOf(call)).toBe(idOf(exec))
      expect(spans.every((s) => traceOf(s) === callerTrace)).toBe(true)

      const expected = `00-${callerTrace}-${idOf(call)}-01`
      // In `_meta` (what the upstream tool saw)…
      // (with sluice's own progress token: upstream progress is relayed, src/upstream/)
      const meta = { traceparent: expected, progressToken: expect.stringMatching(/^sluice-\d+$/) }
      expect(out.result).toEqual({ meta })
      expect(upstream.seen).toHaveLength(1)
      const seen = upstream.seen[0]!
      expect(seen.meta).toEqual(meta)
      // …and neither baggage nor the caller's tracestate in any header of the upstream request.
      expect(seen.headers['baggage']).toBeUndefined()
      expect(JSON.stringify(seen.headers)).not.toContain(CANARY_BAGGAGE)
      assertNoCanary(spans)
    } finally {
      await client.close()
      await gw.close()
    }
  })

  it('sends the inner call’s traceparent to an HTTP upstream in the request headers', async () => {
    upstream.seen.length = 0
    const out = await rt.engine.execute(rt.principal(), 'return await tools.up.meta({})')
    expect(out.ok).toBe(true)
    const spans = await finishedSpans()
    const call = spans.find((s) => s.name === 'execute_tool up.meta')!
    const expected = `00-${traceOf(call)}-${idOf(call)}-01`
    expect(upstream.seen).toHaveLength(1)
    expect(upstream.seen[0]!.meta).toEqual({
      traceparent: expected,
      progressToken: expect.stringMatching(/^sluice-\d+$/),
    })
    expect(upstream.seen[0]!.headers['traceparent']).toBe(expected)
  })
})
