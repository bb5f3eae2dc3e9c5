/**
 * startTelemetry: spans made with withSpan reach an in-memory exporter as a parent/child tree,
 * and a real OTLP/HTTP receiver (started here on 127.0.0.1) as JSON, with no code, arguments or
 * canary secrets in them (CRD-06).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { SluiceError } from '../../src/errors.js'
import {
  configureAttributes,
  extractTraceContext,
  injectTraceContext,
  setSafeAttributes,
  withSpan,
  type SafeAttributes,
} from '../../src/telemetry/index.js'
import { startTelemetry, type TelemetryHandle } from '../../src/telemetry/sdk.js'

const CANARY = 'CANARY-91d2-do-not-export'

let telemetry: TelemetryHandle | undefined
afterEach(async () => {
  configureAttributes({})
  await telemetry?.shutdown()
  telemetry = undefined
})

/** What an engine might carelessly try to put on a span. */
const careless = {
  'gen_ai.operation.name': 'execute_tool',
  'gen_ai.tool.name': 'find',
  code: `const token = "${CANARY}"`,
  args: JSON.stringify({ password: CANARY }),
  authorization: `Bearer ${CANARY}`,
  'gen_ai.tool.call.arguments': JSON.stringify({ q: CANARY }),
  'gen_ai.tool.call.result': CANARY,
} as unknown as SafeAttributes

describe('startTelemetry (memory exporter)', () => {
  it('exports a parent/child span tree built with withSpan, the context passed across awaits', async () => {
    telemetry = await startTelemetry({ serviceName: 'sluice-test', exporter: 'memory' })
    let carrier: ReturnType<typeof injectTraceContext> = {}
    const result = await withSpan(
      'execute_code',
      { kind: 'server', attributes: { 'mcp.method.name': 'tools/call' } },
      async (_span, parent) => {
        // A macrotask hop: the context is a value, it survives anything.
        await new Promise((r) => setImmediate(r))
        await Promise.all([
          withSpan(
            'execute_tool crm.find',
            { kind: 'client', parent, attributes: { 'gen_ai.tool.name': 'find' } },
            async (_inner, own) => {
              carrier = injectTraceContext(own)
            },
          ),
          withSpan('execute_tool crm.get', { kind: 'client', parent }, async () => 2),
        ])
        return 'done'
      },
    )
    expect(result).toBe('done')
    await telemetry.forceFlush()
    const spans = telemetry.memoryExporter!.getFinishedSpans()
    const root = spans.find((s) => s.name === 'execute_code')!
    const children = spans.filter((s) => s.parentSpanContext?.spanId === root.spanContext().spanId)
    expect(children.map((s) => s.name).sort()).toEqual([
      'execute_tool crm.find',
      'execute_tool crm.get',
    ])
    expect(children.every((s) => s.spanContext().traceId === root.spanContext().traceId)).toBe(true)
    expect(root.attributes).toEqual({ 'mcp.method.name': 'tools/call' })
    expect(root.resource.attributes['service.name']).toBe('sluice-test')
    const find = children.find((s) => s.name === 'execute_tool crm.find')!
    expect(carrier).toEqual({
      traceparent: `00-${find.spanContext().traceId}-${find.spanContext().spanId}-01`,
    })
  })

  it('records a failure as error.type and status, with only a SluiceError message, and rethrows', async () => {
    telemetry = await startTelemetry({ serviceName: 'sluice-test', exporter: 'memory' })
    await expect(
      withSpan('denied', {}, () => {
        throw new SluiceError('TOOL_DENIED', 'denied by rule no-external-mail')
      }),
    ).rejects.toThrow('denied by rule no-external-mail')
    await expect(
      withSpan('crashed', {}, () => {
        throw new Error(`upstream said ${CANARY}`)
      }),
    ).rejects.toThrow(CANARY)
    await telemetry.forceFlush()
    const [denied, crashed] = telemetry.memoryExporter!.getFinishedSpans()
    expect(denied!.status).toEqual({ code: 2, message: 'TOOL_DENIED' })
    expect(denied!.attributes).toEqual({ 'error.type': 'TOOL_DENIED' })
    expect(denied!.events[0]!.attributes).toEqual({
      'exception.type': 'TOOL_DENIED',
      'exception.message': 'denied by rule no-external-mail',
    })
    expect(crashed!.attributes).toEqual({ 'error.type': 'Error' })
    expect(JSON.stringify(crashed!.events)).not.toContain(CANARY)
  })

  it('CRD-06 exports no code, arguments, results or canaries by default', async () => {
    telemetry = await startTelemetry({ serviceName: 'sluice-test', exporter: 'memory' })
    await withSpan('execute_tool crm.find', { attributes: careless }, (span) =>
      setSafeAttributes(span, careless),
    )
    await telemetry.forceFlush()
    const [span] = telemetry.memoryExporter!.getFinishedSpans()
    expect(span!.attributes).toEqual({
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'find',
    })
    expect(
      JSON.stringify({ attributes: span!.attributes, events: span!.events, name: span!.name }),
    ).not.toContain(CANARY)
  })

  it('parents a server span on the caller traceparent, and hands upstreams only traceparent', async () => {
    telemetry = await startTelemetry({ serviceName: 'sluice-test', exporter: 'memory' })
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const parent = extractTraceContext({
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      tracestate: 'evil=1',
      baggage: `k=${CANARY}`,
    })
    const meta = await withSpan('tools/call', { kind: 'server', parent }, (_span, own) =>
      injectTraceContext(own),
    )
    await telemetry.forceFlush()
    const [span] = telemetry.memoryExporter!.getFinishedSpans()
    expect(span!.spanContext().traceId).toBe(traceId)
    expect(span!.parentSpanContext?.spanId).toBe('00f067aa0ba902b7')
    expect(meta).toEqual({ traceparent: `00-${traceId}-${span!.spanContext().spanId}-01` })
  })

  it('makes no context active: nothing nests by accident, so no promise pays for async hooks', async () => {
    telemetry = await startTelemetry({ serviceName: 'sluice-test', exporter: 'memory' })
    await withSpan('outer', {}, async () => {
      expect(injectTraceContext()).toEqual({})
      await withSpan('not-a-child', {}, () => undefined)
    })
    await telemetry.forceFlush()
    const spans = telemetry.memoryExporter!.getFinishedSpans()
    expect(spans.map((s) => [s.name, s.parentSpanContext])).toEqual([
      ['not-a-child', undefined],
      ['outer', undefined],
    ])
  })

  it('starts again after shutdown (globals are released)', async () => {
    const first = await startTelemetry({ serviceName: 'one', exporter: 'memory' })
    await first.shutdown()
    telemetry = await startTelemetry({ serviceName: 'two', exporter: 'memory' })
    await withSpan('again', {}, () => undefined)
    await telemetry.forceFlush()
    expect(telemetry.memoryExporter!.getFinishedSpans().map((s) => s.name)).toEqual(['again'])
  })
})

interface Received {
  method?: string
  url?: string
  headers: IncomingHttpHeaders
  body: string
}

async function otlpReceiver(): Promise<{ server: Server; url: string; requests: Received[] }> {
  const requests: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      requests.push({
        method: req.method,
        url: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      })
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests }
}

describe('startTelemetry (OTLP/HTTP)', () => {
  it('posts JSON spans to a real receiver, with configured headers and without canaries', async () => {
    const receiver = await otlpReceiver()
    try {
      telemetry = await startTelemetry({
        serviceName: 'sluice-otlp',
        exporter: 'otlp',
        endpoint: receiver.url,
        headers: { 'x-api-key': 'collector-key' },
      })
      await withSpan('execute_code', { kind: 'server', attributes: careless }, async (span) => {
        setSafeAttributes(span, { 'sluice.call.count': 1 })
        await withSpan('execute_tool crm.find', { kind: 'client' }, () => undefined)
      })
      await telemetry.forceFlush()
      const posts = receiver.requests.filter((r) => r.method === 'POST' && r.url === '/v1/traces')
      expect(posts.length).toBeGreaterThan(0)
      expect(posts[0]!.headers['content-type']).toMatch(/^application\/json/)
      expect(posts[0]!.headers['x-api-key']).toBe('collector-key')
      const body = posts.map((p) => p.body).join('\n')
      const names = posts.flatMap((p) =>
        (
          JSON.parse(p.body) as {
            resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string }> }> }>
          }
        ).resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name))),
      )
      expect(names.sort()).toEqual(['execute_code', 'execute_tool crm.find'])
      expect(body).toContain('sluice-otlp')
      expect(body).toContain('gen_ai.operation.name')
      expect(body).not.toContain(CANARY)
      expect(body).not.toMatch(/authorization|password/i)
      const spanKeys = posts.flatMap((p) =>
        (
          JSON.parse(p.body) as {
            resourceSpans: Array<{
              scopeSpans: Array<{ spans: Array<{ attributes: Array<{ key: string }> }> }>
            }>
          }
        ).resourceSpans.flatMap((rs) =>
          rs.scopeSpans.flatMap((ss) => ss.spans.flatMap((s) => s.attributes.map((a) => a.key))),
        ),
      )
      expect(spanKeys.sort()).toEqual([
        'gen_ai.operation.name',
        'gen_ai.tool.name',
        'sluice.call.count',
      ])
    } finally {
      await telemetry?.shutdown()
      telemetry = undefined
      await new Promise((resolve) => receiver.server.close(resolve))
    }
  })

  it('is a no-op with exporter none', async () => {
    telemetry = await startTelemetry({ serviceName: 'x', exporter: 'none' })
    expect(await withSpan('nothing', {}, () => 1)).toBe(1)
    expect(telemetry.memoryExporter).toBeUndefined()
  })
})
