/**
 * The MCP TypeScript SDK 2.x client (`@modelcontextprotocol/client` 2.4.0) against `sluice serve`
 * (bearer token) and `sluice stdio`. sluice is built on SDK 1.32 and speaks up to 2025-11-25; the
 * 2.x client knows 2026-07-28 too, but only negotiates it when asked (`versionNegotiation`):
 *
 * - `legacy` (the default): the plain `initialize` handshake at 2025-11-25; works.
 * - `auto`: probes with `server/discover` first; sluice answers it as a 2025 server does (over
 *   HTTP a 400, "send initialize first"), so the client falls back to `initialize`; works.
 * - `{ pin: '2026-07-28' }`: refuses, since sluice offers no 2026-07-28 (issue 11).
 */
import { Client, SdkError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
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
    it.each(['legacy', 'auto'] as const)(
      'versionNegotiation %s: negotiates 2025-11-25, lists the tools, runs execute_code',
      async (mode) => {
        await withClient(mode, transports[kind](), async (client) => {
          expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25')
          expect(client.getServerVersion()?.name).toBe('sluice')
          const { tools } = await client.listTools()
          expect(names(tools)).toEqual(['execute_code', 'search_tools'])
          const result = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
          expect(result.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
          expect(result.structuredContent).toEqual(RESULT)
        })
      },
    )

    it('versionNegotiation pin 2026-07-28: refused, sluice does not offer that revision yet', async () => {
      const connecting = withClient({ pin: '2026-07-28' }, transports[kind](), async () => {})
      await expect(connecting).rejects.toBeInstanceOf(SdkError)
      await expect(connecting).rejects.toMatchObject({
        code: 'ERA_NEGOTIATION_FAILED',
        message:
          'Version negotiation failed: the server did not offer pinned protocol version 2026-07-28 via server/discover (no fallback in pin mode)',
      })
    })
  },
)
