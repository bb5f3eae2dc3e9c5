/**
 * LangChain.js: `@langchain/mcp-adapters` 1.1.4 (`MultiServerMCPClient`, on `@langchain/core`
 * 1.4.0 and `@langchain/langgraph` 1.7.3, its required peers) against `sluice serve` (bearer
 * header, Streamable HTTP without the SSE fallback) and `sluice stdio`.
 *
 * The tools run the way an agent runs them: LangGraph's prebuilt `ToolNode` gets an AI message
 * with a tool call for `execute_code` and answers with the `ToolMessage` the model would see.
 * What the adapters make of sluice's result: a single text block that comes with
 * `structuredContent` becomes an object (the block plus `structuredContent`), which the ToolNode
 * serialises as JSON into the message content; the structured result is also the artifact.
 */
import { AIMessage, type ToolMessage } from '@langchain/core/messages'
import { ToolNode } from '@langchain/langgraph/prebuilt'
import { MultiServerMCPClient, type ClientConfig } from '@langchain/mcp-adapters'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODE, names, RESULT, RESULT_TEXT, startSluice, type Sluice } from './harness.js'

let sluice: Sluice
beforeAll(async () => {
  sluice = await startSluice()
})
afterAll(async () => {
  await sluice?.close()
})

async function listAndRun(mcpServers: ClientConfig['mcpServers']): Promise<void> {
  const client = new MultiServerMCPClient({ mcpServers, onConnectionError: 'throw' })
  try {
    const tools = await client.getTools()
    expect(names(tools)).toEqual(['execute_code', 'search_tools'])

    const call = {
      id: 'call-1',
      name: 'execute_code',
      args: { code: CODE },
      type: 'tool_call' as const,
    }
    const out = (await new ToolNode(tools).invoke({
      messages: [new AIMessage({ content: '', tool_calls: [call] })],
    })) as { messages: ToolMessage[] }
    expect(out.messages).toHaveLength(1)
    const message = out.messages[0]!
    expect(message).toMatchObject({ status: 'success', tool_call_id: 'call-1' })
    expect(typeof message.content).toBe('string')
    expect(JSON.parse(message.content as string)).toEqual({
      type: 'text',
      text: RESULT_TEXT,
      structuredContent: RESULT,
    })
    expect(message.artifact).toEqual([{ type: 'mcp_structured_content', data: RESULT }])
  } finally {
    await client.close()
  }
}

describe('@langchain/mcp-adapters MultiServerMCPClient', () => {
  it('sluice serve over Streamable HTTP with a bearer header: loads the tools, a ToolNode runs execute_code', async () => {
    await listAndRun({
      sluice: {
        url: sluice.url,
        headers: { Authorization: `Bearer ${sluice.token}` },
        automaticSSEFallback: false,
      },
    })
  })

  it('sluice stdio: loads the tools, a ToolNode runs execute_code', async () => {
    await listAndRun({
      sluice: {
        transport: 'stdio',
        command: sluice.stdio.command,
        args: sluice.stdio.args,
        stderr: 'pipe',
      },
    })
  })
})
