/**
 * Export to a real OTLP/HTTP receiver: a `node:http` server started here on 127.0.0.1 accepts
 * `POST /v1/traces` (JSON, as sdk.ts configures the exporter). One execution through the real
 * engine reaches it, after `forceFlush`, as spans with their names and parent links, with the
 * configured request headers, and with no code, argument or secret canary in any byte.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTelemetry, type TelemetryHandle } from '../../src/telemetry/sdk.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'

const CANARY_CODE = `code-canary-${randomBytes(12).toString('hex')}`
const CANARY_ARG = `arg-canary-${randomBytes(12).toString('hex')}`
const CANARY_TOKEN = `token-canary-${randomBytes(18).toString('base64url')}`

interface Received {
  path: string
  headers: IncomingHttpHeaders
  body: string
}

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  attributes: Array<{ key: string; value: Record<string, unknown> }>
}

interface OtlpBody {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }
    scopeSpans: Array<{ scope: { name: string }; spans: OtlpSpan[] }>
  }>
}

let receiver: Server
let received: Received[]
let endpoint: string
let telemetry: TelemetryHandle
let rt: TestRuntime

beforeAll(async () => {
  received = []
  receiver = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    received.push({
      path: req.url ?? '',
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    })
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve))
  endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`
  telemetry = await startTelemetry({
    serviceName: 'sluice-otlp-e2e',
    exporter: 'otlp',
    endpoint,
    headers: { 'x-api-key': 'collector-key' },
  })
  rt = await testRuntime({
    recording: true,
    policy: `
rules:
  - id: rec-tools
    effect: allow
    when: tool.server == "rec"
  - id: no-external-mail
    effect: deny
    when: tool.name == "send_email" && !args.to.endsWith("@example.com")
`,
  })
})
afterAll(async () => {
  await rt?.close()
  await telemetry?.shutdown()
  receiver?.closeAllConnections()
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()))
})

describe('export to an OTLP/HTTP receiver', () => {
  it('delivers the execution’s spans as OTLP JSON with the configured headers and no canary', async () => {
    const code = `
const s = "${CANARY_CODE}"
const [a, b] = await Promise.all([tools.rec.read_item({ id: "${CANARY_ARG}" }), tools.rec["get-sum"]({ a: 1, b: 2 })])
try { await tools.rec.send_email({ to: "eve@evil.test", subject: "${CANARY_ARG}" }) } catch {}
return b`
    const out = await rt.engine.execute(rt.principal(), code, { inboundToken: CANARY_TOKEN })
    expect(out).toMatchObject({ ok: true, result: 3 })
    await telemetry.forceFlush()

    expect(received.length).toBeGreaterThan(0)
    for (const r of received) {
      expect(r.path).toBe('/v1/traces')
      expect(r.headers['content-type']).toMatch(/^application\/json/)
      expect(r.headers['x-api-key']).toBe('collector-key')
      for (const canary of [CANARY_CODE, CANARY_ARG, CANARY_TOKEN, 'eve@evil.test'])
        expect(r.body).not.toContain(canary)
    }
    const bodies = received.map((r) => JSON.parse(r.body) as OtlpBody)
    const resources = bodies.flatMap((b) => b.resourceSpans)
    expect(
      resources.every((rs) =>
        rs.resource.attributes.some(
          (a) => a.key === 'service.name' && a.value.stringValue === 'sluice-otlp-e2e',
        ),
      ),
    ).toBe(true)
    const spans = resources.flatMap((rs) =>
      rs.scopeSpans.filter((ss) => ss.scope.name === 'sluice').flatMap((ss) => ss.spans),
    )
    expect(spans.map((s) => s.name).sort()).toEqual([
      'execute_code',
      'execute_tool rec.get-sum',
      'execute_tool rec.read_item',
      'execute_tool rec.send_email',
    ])
    const root = spans.find((s) => s.name === 'execute_code')!
    expect(root.parentSpanId ?? '').toBe('')
    for (const s of spans.filter((x) => x !== root)) {
      expect(s.traceId).toBe(root.traceId)
      expect(s.parentSpanId).toBe(root.spanId)
    }
    const denied = spans.find((s) => s.name === 'execute_tool rec.send_email')!
    const attr = (s: OtlpSpan, key: string) => s.attributes.find((a) => a.key === key)?.value
    expect(attr(denied, 'sluice.policy.decision')).toEqual({ stringValue: 'deny' })
    expect(attr(denied, 'sluice.policy.rule_id')).toEqual({ stringValue: 'no-external-mail' })
    expect(attr(denied, 'error.type')).toEqual({ stringValue: 'TOOL_DENIED' })
  })
})
