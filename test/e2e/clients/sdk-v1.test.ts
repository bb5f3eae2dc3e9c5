/**
 * The MCP TypeScript SDK 1.x client (`@modelcontextprotocol/sdk`, the version sluice itself is
 * built on) against a real `sluice serve` with a bearer token and against `sluice stdio`.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODE, names, RESULT, RESULT_TEXT, startSluice, type Sluice } from './harness.js'

let sluice: Sluice
beforeAll(async () => {
  sluice = await startSluice()
})
afterAll(async () => {
  await sluice?.close()
})

async function listAndRun(client: Client): Promise<void> {
  const { tools } = await client.listTools()
  expect(names(tools)).toEqual(['execute_code', 'search_tools'])
  const result = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
  expect(result.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
  expect(result.structuredContent).toEqual(RESULT)
  expect(result.isError).toBeUndefined()
}

describe('@modelcontextprotocol/sdk 1.x client', () => {
  it('sluice serve over Streamable HTTP with a bearer token: lists the tools, runs execute_code', async () => {
    const client = new Client({ name: 'sdk-v1-e2e', version: '0.0.1' })
    const transport = new StreamableHTTPClientTransport(new URL(sluice.url), {
      requestInit: { headers: { Authorization: `Bearer ${sluice.token}` } },
    })
    try {
      await client.connect(transport)
      expect(transport.protocolVersion).toBe(LATEST_PROTOCOL_VERSION)
      expect(client.getServerVersion()?.name).toBe('sluice')
      await listAndRun(client)
    } finally {
      await client.close()
    }
  })

  it('sluice stdio as a child process: lists the tools, runs execute_code', async () => {
    const client = new Client({ name: 'sdk-v1-e2e', version: '0.0.1' })
    const transport = new StdioClientTransport({ ...sluice.stdio, stderr: 'pipe' })
    try {
      await client.connect(transport)
      await listAndRun(client)
    } finally {
      await client.close()
    }
  })
})
