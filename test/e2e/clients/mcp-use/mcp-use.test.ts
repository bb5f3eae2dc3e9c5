/**
 * mcp-use 1.34.6 (`MCPClient` from `mcp-use/client`) against `sluice serve` (bearer header) and
 * `sluice stdio`.
 *
 * Why 1.34.6 and why its own package (./package.json, installed by `npm run test:clients:mcp-use`,
 * not by the root `npm ci`): mcp-use 2.x wants Node ≥ 22.22.2 and moved its client to
 * `@mcp-use/client`, which the registry does not serve; 1.34.6 is the last release for Node 20,
 * and in the root node_modules it adds ~500 MB (216 packages: its inspector, CLI, a React UI, Bun
 * binaries). Its own folder, without peers, optional binaries or install scripts, is ~270 MB.
 * Until it is installed this file is skipped, and says how to install it.
 *
 * mcp-use sends anonymous telemetry (PostHog, Scarf) unless MCP_USE_ANONYMIZED_TELEMETRY=false;
 * it is set before mcp-use loads, and HOME is a temp folder that must stay empty.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODE, names, RESULT, RESULT_TEXT, startSluice, type Sluice } from '../harness.js'

const INSTALLED = existsSync(join(import.meta.dirname, 'node_modules/mcp-use/package.json'))

/** The slice of mcp-use's API the test uses (typed here: tsc must pass without the package). */
interface McpUseSession {
  listTools(): Promise<Array<{ name: string }>>
  callTool(
    name: string,
    args: Record<string, unknown>,
  ): Promise<{ content: unknown; structuredContent?: unknown; isError?: boolean }>
}
interface McpUseClient {
  createSession(server: string): Promise<McpUseSession>
  closeAllSessions(): Promise<void>
}
type McpUseClientClass = new (config: { mcpServers: Record<string, unknown> }) => McpUseClient

let MCPClient: McpUseClientClass
let sluice: Sluice
let home: string
const saved = { home: process.env['HOME'], telemetry: process.env['MCP_USE_ANONYMIZED_TELEMETRY'] }

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
}

beforeAll(async () => {
  if (!INSTALLED) return
  home = mkdtempSync(join(tmpdir(), 'sluice-mcp-use-home-'))
  process.env['HOME'] = home
  process.env['MCP_USE_ANONYMIZED_TELEMETRY'] = 'false'
  // A variable specifier: resolved at run time from this folder's node_modules.
  const specifier = 'mcp-use/client'
  ;({ MCPClient } = (await import(specifier)) as { MCPClient: McpUseClientClass })
  sluice = await startSluice()
})
afterAll(async () => {
  await sluice?.close()
  restore('HOME', saved.home)
  restore('MCP_USE_ANONYMIZED_TELEMETRY', saved.telemetry)
  if (home !== undefined) rmSync(home, { recursive: true, force: true })
})

async function listAndRun(server: Record<string, unknown>): Promise<void> {
  const client = new MCPClient({ mcpServers: { sluice: server } })
  try {
    const session = await client.createSession('sluice')
    expect(names(await session.listTools())).toEqual(['execute_code', 'search_tools'])
    const result = await session.callTool('execute_code', { code: CODE })
    expect(result.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
    expect(result.structuredContent).toEqual(RESULT)
    expect(result.isError).toBeUndefined()
  } finally {
    await client.closeAllSessions()
  }
  expect(readdirSync(home)).toEqual([])
}

describe.skipIf(!INSTALLED)(
  `mcp-use 1.34.6 MCPClient${INSTALLED ? '' : ' (not installed: npm run test:clients:mcp-use)'}`,
  () => {
    it('sluice serve over Streamable HTTP with a bearer header: lists the tools, runs execute_code', async () => {
      await listAndRun({ url: sluice.url, headers: { Authorization: `Bearer ${sluice.token}` } })
    })

    it('sluice stdio: lists the tools, runs execute_code', async () => {
      await listAndRun({ command: sluice.stdio.command, args: sluice.stdio.args })
    })
  },
)
