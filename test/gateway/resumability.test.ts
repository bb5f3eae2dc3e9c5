/**
 * Resumable SSE at the gateway (src/gateway/app.ts + event-store.ts), on a real 127.0.0.1 port
 * with raw HTTP: a 2025-11-25 POST stream opens with a priming event carrying the configured
 * `retry`; older clients get none (they cannot parse an event without data); `maxBytes: 0` turns
 * resumability off; a `Last-Event-ID` the session cannot resume exactly is answered 410.
 * The limits at N and N+1 are in event-store.test.ts and test/e2e/progress.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp, listen } from '../../src/gateway/index.js'
import { EVENT_OVERHEAD_BYTES } from '../../src/gateway/event-store.js'
import { MCP_HEADERS, devConfig, fakeEngine } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
})

async function serve(gateway: Record<string, unknown> = {}): Promise<string> {
  const app: FastifyInstance = buildApp({
    config: devConfig(gateway),
    engine: fakeEngine(),
    insecureDev: true,
  })
  const url = await listen(app, { host: '127.0.0.1', port: 0, print: () => {} })
  cleanups.push(() => app.close())
  return url
}

async function session(url: string, protocolVersion: string): Promise<string> {
  const init = await fetch(url, {
    method: 'POST',
    headers: MCP_HEADERS,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion, capabilities: {}, clientInfo: { name: 't', version: '1' } },
    }),
  })
  expect(init.status).toBe(200)
  await init.text()
  return init.headers.get('mcp-session-id')!
}

const headers = (id: string, version: string) => ({
  ...MCP_HEADERS,
  'mcp-session-id': id,
  'mcp-protocol-version': version,
})

/** The raw SSE body of one execute_code call in the session. */
async function call(url: string, id: string, version: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: headers(id, version),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name: 'execute_code',
        arguments: { code: 'progress' },
        _meta: { progressToken: 1 },
      },
    }),
  })
  expect(res.headers.get('content-type')).toBe('text/event-stream')
  return res.text()
}

/** The `id:` values of an SSE body. */
const idsOf = (body: string) =>
  body
    .split('\n')
    .filter((l) => l.startsWith('id: '))
    .map((l) => l.slice(4))

describe('resumable SSE streams', () => {
  it('a 2025-11-25 stream opens with a priming event (id, retry 1000 by default, no data); every event has an id', async () => {
    const url = await serve()
    const id = await session(url, '2025-11-25')
    const body = await call(url, id, '2025-11-25')
    const first = body.split('\n\n')[0]!
    expect(first).toMatch(/^id: [0-9a-f-]{36}:\d+\nretry: 1000\ndata: $/)
    // Priming, two progress notifications (the fake engine's), the response.
    expect(idsOf(body)).toHaveLength(4)
    expect(new Set(idsOf(body)).size).toBe(4)
    const ready = (await (await fetch(new URL('/readyz', url))).json()) as Record<string, unknown>
    // Held: initialize's priming event and answer, and the call's four; each counted as its JSON
    // plus EVENT_OVERHEAD_BYTES.
    const held = ready['resumability'] as { events: number; bytes: number }
    expect(held.events).toBe(6)
    expect(held.bytes).toBeGreaterThan(6 * EVENT_OVERHEAD_BYTES)
  })

  it('gives a client older than 2025-11-25 no priming event and no retry (the SDK gates them)', async () => {
    const url = await serve()
    const id = await session(url, '2025-06-18')
    const body = await call(url, id, '2025-06-18')
    expect(body).not.toContain('retry:')
    expect(body.split('\n\n')[0]).toMatch(/^event: message\nid: [0-9a-f-]{36}:\d+\ndata: \{/)
  })

  it('resumability.maxBytes: 0 turns it off: no event ids, no retry', async () => {
    const url = await serve({ resumability: { maxBytes: 0 } })
    const id = await session(url, '2025-11-25')
    const body = await call(url, id, '2025-11-25')
    expect(idsOf(body)).toEqual([])
    expect(body).not.toContain('retry:')
    expect(body).toContain('"result"')
    const ready = (await (await fetch(new URL('/readyz', url))).json()) as Record<string, unknown>
    expect(ready).not.toHaveProperty('resumability')
  })

  it('answers 410 Gone, in words, for a Last-Event-ID this session cannot resume exactly', async () => {
    const url = await serve()
    const id = await session(url, '2025-11-25')
    const res = await fetch(url, {
      method: 'GET',
      headers: {
        ...headers(id, '2025-11-25'),
        accept: 'text/event-stream',
        'last-event-id': 'x:1',
      },
    })
    expect(res.status).toBe(410)
    expect(await res.json()).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: {
        code: -32000,
        message:
          'Gone: cannot resume after Last-Event-ID "x:1": no event of that stream is held (an unknown id, or all of its events were dropped); send the request again',
      },
    })
  })
})
