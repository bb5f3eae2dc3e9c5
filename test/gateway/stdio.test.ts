/**
 * The MCP server over stdio in a real child process, driven by the SDK's stdio client: same
 * tools, and the principal comes from `identity.local`.
 */
import { resolve } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { describe, expect, it } from 'vitest'

const fixture = resolve(import.meta.dirname, 'fixtures/stdio-server.ts')

describe('startStdio', () => {
  it("serves execute_code and search_tools as the config's local principal", async () => {
    const client = new Client({ name: 'stdio-test', version: '0.0.1' }, { capabilities: {} })
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', fixture],
      stderr: 'pipe',
    })
    try {
      await client.connect(transport)
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toEqual(['execute_code', 'search_tools'])
      expect(tools[0]!.description).toContain('Declarations for stdio-user')
      const result = await client.callTool({
        name: 'execute_code',
        arguments: { code: 'return 2' },
      })
      expect(result.structuredContent).toEqual({
        ok: true,
        result: { sub: 'stdio-user', code: 'return 2' },
        logs: ['hello'],
        calls: [],
      })
    } finally {
      await client.close()
    }
  })
})
