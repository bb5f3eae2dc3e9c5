/**
 * The MCP TypeScript SDK 2.x client (`@modelcontextprotocol/client` 2.4.0) against `sluice serve`
 * (bearer token) and `sluice stdio`. The 2.x client negotiates by `versionNegotiation`:
 *
 * - `legacy` (the default): the plain `initialize` handshake at 2025-11-25; works on both.
 * - `auto`: probes with `server/discover` first; both answer it, so 2026-07-28.
 * - `{ pin: '2026-07-28' }`: stateless over `serve` (no session id), and over `stdio` a
 *   connection pinned to a 2026-07-28 instance from its first message.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODE, names, RESULT, RESULT_TEXT, startSluice, type Sluice } from './harness.js'

let sluice: Sluice
beforeAll(async () => {
  sluice = await startSluice()
})
afterAll(async () => {
  await sluice?.close()
})

type Mode = 'legacy' | 'auto' | { pin: string }
type Transport = StreamableHTTPClientTransport | StdioClientTransport

const transports: Record<'serve' | 'stdio', () => Transport> = {
  serve: () =>
    new StreamableHTTPClientTransport(new URL(sluice.url), {
      requestInit: { headers: { Authorization: `Bearer ${sluice.token}` } },
    }),
  stdio: () => new StdioClientTransport({ ...sluice.stdio, stderr: 'pipe' }),
}

async function withClient(
  mode: Mode,
  transport: Transport,
  fn: (client: Client) => Promise<void>,
): Promise<void> {
  const client = new Client(
    { name: 'sdk-v2-e2e', version: '0.0.1' },
    {
      versionNegotiation: { mode },
    },
  )
  try {
    await client.connect(transport)
    await fn(client)
  } finally {
    await client.close()
  }
}

describe.each(['serve', 'stdio'] as const)(
  '@modelcontextprotocol/client 2.x, sluice %s',
  (kind) => {
    it.each([
      ['legacy', '2025-11-25'],
      ['auto', '2026-07-28'],
    ] as const)(
      'versionNegotiation %s: negotiates %s, lists the tools, runs execute_code',
      async (mode, version) => {
        await withClient(mode, transports[kind](), async (client) => {
          expect(client.getNegotiatedProtocolVersion()).toBe(version)
          expect(client.getServerVersion()?.name).toBe('sluice')
          const { tools } = await client.listTools()
          expect(names(tools)).toEqual(['execute_code', 'search_tools'])
          const result = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
          expect(result.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
          expect(result.structuredContent).toEqual(RESULT)
        })
      },
    )

    it('versionNegotiation pin 2026-07-28: no session id, lists, runs, searches', async () => {
      const transport = transports[kind]()
      await withClient({ pin: '2026-07-28' }, transport, async (client) => {
        expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28')
        if (transport instanceof StreamableHTTPClientTransport)
          expect(transport.sessionId).toBeUndefined()
        const { tools } = await client.listTools()
        expect(names(tools)).toEqual(['execute_code', 'search_tools'])
        const result = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
        expect(result.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
        expect(result.structuredContent).toEqual(RESULT)
        const found = await client.callTool({
          name: 'search_tools',
          arguments: { query: 'echo' },
        })
        expect(found.structuredContent).toMatchObject({
          matches: [{ tool: 'everything.echo' }],
        })
      })
    })
  },
)
