/**
 * `type: sse` end to end: a Claude Code style `.mcp.json` entry, loaded by the config loader,
 * drives an Upstream against a real HTTP+SSE MCP server (the SDK's SSEServerTransport on
 * 127.0.0.1, port 0) — tools listed, a tool called, headers from `${VAR}` and per-call headers
 * seen by the server on the event stream and on the POSTs.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { loadConfig } from '../../src/config/index.js'
import { Upstream } from '../../src/upstream/index.js'
import { clientInfo, tempDir, textOf } from './helpers.js'

interface Seen {
  method: string
  path: string
  tenant: string | undefined
  authorization: string | undefined
}

/** One McpServer per SSE stream, as SSE servers do: each GET /sse is a session. */
function buildServer(): McpServer {
  const server = new McpServer({ name: 'fixture-sse', version: '1.0.0' })
  server.registerTool(
    'echo',
    { description: 'Echo a message', inputSchema: { message: z.string() } },
    async ({ message }) => ({ content: [{ type: 'text', text: `echo: ${message}` }] }),
  )
  server.registerTool(
    'whoami',
    { description: 'Headers of the POST that carried this call', inputSchema: {} },
    async (_args, extra) => {
      const h = extra.requestInfo?.headers ?? {}
      const seen = { authorization: h.authorization ?? null, tenant: h['x-tenant'] ?? null }
      return { content: [{ type: 'text', text: JSON.stringify(seen) }], structuredContent: seen }
    },
  )
  return server
}

const seen: Seen[] = []
const transports = new Map<string, SSEServerTransport>()
let http: Server
let baseUrl: string
const dir = tempDir('sluice-sse-')

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

beforeAll(async () => {
  http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    seen.push({
      method: req.method ?? '',
      path: url.pathname,
      tenant: header(req, 'x-tenant'),
      authorization: header(req, 'authorization'),
    })
    if (req.method === 'GET' && url.pathname === '/sse') {
      const transport = new SSEServerTransport('/messages', res)
      transports.set(transport.sessionId, transport)
      res.on('close', () => transports.delete(transport.sessionId))
      void buildServer().connect(transport)
      return
    }
    const transport = transports.get(url.searchParams.get('sessionId') ?? '')
    if (req.method === 'POST' && url.pathname === '/messages' && transport !== undefined) {
      void transport.handlePostMessage(req, res)
      return
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
})

afterAll(async () => {
  try {
    for (const transport of transports.values()) await transport.close()
    http.closeAllConnections()
    await new Promise<void>((resolve) => http.close(() => resolve()))
  } finally {
    dir.remove()
  }
})

describe('Upstream over HTTP+SSE (type: sse)', () => {
  it('lists and calls tools of a server configured as a client would, with ${VAR} headers on every request', async () => {
    const previous = process.env.SLUICE_T_SSE_TOKEN
    process.env.SLUICE_T_SSE_TOKEN = 'sse-secret'
    const file = join(dir.path, '.mcp.json')
    writeFileSync(
      file,
      JSON.stringify({
        mcpServers: {
          legacy: {
            type: 'sse',
            url: `${baseUrl}/sse`,
            headers: { Authorization: 'Bearer ${SLUICE_T_SSE_TOKEN}', 'X-Tenant': 'acme' },
            autoApprove: [],
          },
        },
      }),
    )
    let config: ReturnType<typeof loadConfig>
    try {
      config = loadConfig(file, { onWarning: () => undefined })
    } finally {
      if (previous === undefined) delete process.env.SLUICE_T_SSE_TOKEN
      else process.env.SLUICE_T_SSE_TOKEN = previous
    }
    const server = config.servers.legacy
    expect(server).toMatchObject({ type: 'sse' })
    const upstream = new Upstream('legacy', server!, { callTimeoutMs: 10_000, clientInfo })
    try {
      const tools = await upstream.listTools()
      expect(tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami'])

      const result = await upstream.callTool('echo', { message: 'hi' })
      expect(result.isError).toBeFalsy()
      expect(textOf(result)).toBe('echo: hi')

      const who = await upstream.callTool('whoami', {})
      expect(who.structuredContent).toEqual({ authorization: 'Bearer sse-secret', tenant: 'acme' })

      // The event stream (GET) and every message (POST) carried the configured headers.
      const stream = seen.filter((s) => s.method === 'GET' && s.path === '/sse')
      const posts = seen.filter((s) => s.method === 'POST' && s.path === '/messages')
      expect(stream).toHaveLength(1)
      expect(posts.length).toBeGreaterThanOrEqual(4)
      for (const request of [...stream, ...posts]) {
        expect(request).toMatchObject({ authorization: 'Bearer sse-secret', tenant: 'acme' })
      }
      expect(upstream.health().state).toBe('ready')
    } finally {
      await upstream.close()
    }
  })

  it('sends per-call headers on that call only', async () => {
    const upstream = new Upstream(
      'legacy',
      { type: 'sse', url: `${baseUrl}/sse`, headers: { 'X-Tenant': 'from-config' } },
      { callTimeoutMs: 10_000, clientInfo },
    )
    try {
      const [a, b] = await Promise.all([
        upstream.callTool('whoami', {}, { headers: { Authorization: 'Bearer call-a' } }),
        upstream.callTool('whoami', {}, { headers: { Authorization: 'Bearer call-b' } }),
      ])
      expect(a.structuredContent).toEqual({ authorization: 'Bearer call-a', tenant: 'from-config' })
      expect(b.structuredContent).toEqual({ authorization: 'Bearer call-b', tenant: 'from-config' })
      const plain = await upstream.callTool('whoami', {})
      expect(plain.structuredContent).toEqual({ authorization: null, tenant: 'from-config' })
    } finally {
      await upstream.close()
    }
  })

  it('reports a URL that does not speak SSE as unavailable, naming the server', async () => {
    const upstream = new Upstream(
      'nosse',
      { type: 'sse', url: `${baseUrl}/not-here`, headers: {} },
      { callTimeoutMs: 5_000, clientInfo },
    )
    try {
      await expect(upstream.listTools()).rejects.toMatchObject({
        code: 'UPSTREAM_UNAVAILABLE',
        message: 'upstream nosse is unavailable: SSE error: Non-200 status code (404)',
      })
    } finally {
      await upstream.close()
    }
  })

  it('falls back to HTTP+SSE for a url without type when Streamable HTTP is refused with a 4xx', async () => {
    const before = seen.length
    const upstream = new Upstream(
      'bare',
      { url: `${baseUrl}/sse`, headers: {} },
      { callTimeoutMs: 10_000, clientInfo },
    )
    try {
      expect(textOf(await upstream.callTool('echo', { message: 'fallback' }))).toBe(
        'echo: fallback',
      )
      const requests = seen.slice(before).map((r) => `${r.method} ${r.path}`)
      // The initialize POST of Streamable HTTP is refused, then the SSE stream opens.
      expect(requests.slice(0, 2)).toEqual(['POST /sse', 'GET /sse'])
      expect(upstream.health()).toMatchObject({ state: 'ready', restarts: 0 })
    } finally {
      await upstream.close()
    }
  })

  it('reports both transports when neither answers a url without type', async () => {
    const upstream = new Upstream(
      'nowhere',
      { url: `${baseUrl}/not-here`, headers: {} },
      { callTimeoutMs: 5_000, clientInfo },
    )
    try {
      const error = (await upstream.listTools().catch((e: unknown) => e)) as Error
      expect(error).toMatchObject({
        code: 'UPSTREAM_UNAVAILABLE',
        message:
          'upstream nowhere is unavailable: Streamable HTTP answered HTTP 404 ' +
          '(HTTP+SSE also failed: SSE error: Non-200 status code (404))',
      })
    } finally {
      await upstream.close()
    }
  })
})
