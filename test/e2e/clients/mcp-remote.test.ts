/**
 * mcp-remote 0.15.1, the stdio ↔ Streamable HTTP bridge that Claude Desktop (and any stdio-only
 * client) uses for a remote server: the SDK's stdio client starts `mcp-remote <url> --header
 * Authorization:Bearer <token>` as a user's config would, and talks to `sluice serve` through it.
 *
 * mcp-remote keeps OAuth state under `MCP_REMOTE_CONFIG_DIR` (default `~/.mcp-auth`); both that
 * and HOME point at temp folders here, so it writes nothing outside them. Even with a bearer
 * header it runs OAuth discovery at start (GET on the URL, the RFC 9728 metadata, then the
 * authorization server's metadata): the test checks that it found the test IdP on loopback.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../helpers/runtime.js'
import { CODE, names, RESULT, RESULT_TEXT, startSluice, type Sluice } from './harness.js'

const PROXY = join(ROOT, 'node_modules/mcp-remote/dist/proxy.js')

let sluice: Sluice
let home: string
beforeAll(async () => {
  sluice = await startSluice()
  home = mkdtempSync(join(tmpdir(), 'sluice-mcp-remote-'))
})
afterAll(async () => {
  await sluice?.close()
  if (home !== undefined) rmSync(home, { recursive: true, force: true })
})

describe('mcp-remote → sluice serve', () => {
  it.each([
    ['the default protocol mode (legacy)', []],
    ['--protocol auto (probes server/discover, falls back to initialize)', ['--protocol', 'auto']],
  ])('%s: lists the tools and runs execute_code with the bearer header', async (_, extra) => {
    const configDir = mkdtempSync(join(home, 'config-'))
    const fakeHome = mkdtempSync(join(home, 'home-'))
    const transport = new StdioClientTransport({
      command: process.execPath,
      // No space after the colon: the form mcp-remote's README gives for clients that split args.
      args: [PROXY, sluice.url, '--header', `Authorization:Bearer ${sluice.token}`, ...extra],
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: fakeHome,
        MCP_REMOTE_CONFIG_DIR: configDir,
      },
      stderr: 'pipe',
    })
    let stderr = ''
    transport.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
    const client = new Client({ name: 'mcp-remote-e2e', version: '0.0.1' })
    try {
      await client.connect(transport)
      expect(client.getServerVersion()?.name).toBe('sluice')
      const { tools } = await client.listTools()
      expect(names(tools)).toEqual(['execute_code', 'search_tools'])
      const result = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
      expect(result.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
      expect(result.structuredContent).toEqual(RESULT)
    } finally {
      await client.close()
    }
    expect(stderr).toContain('Using custom headers: Authorization')
    expect(stderr).toContain(`Discovered authorization server: ${sluice.issuer}`)
    expect(stderr).toContain('Connected to remote server using StreamableHTTPClientTransport')
    expect(readdirSync(fakeHome)).toEqual([])
  })
})
