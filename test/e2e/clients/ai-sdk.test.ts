/**
 * The Vercel AI SDK's MCP client, `@ai-sdk/mcp` 1.0.102 (the 1.x line, for `ai` 6; 2.x wants
 * Node ≥ 22), against `sluice serve` (bearer header) and `sluice stdio` (its
 * `Experimental_StdioMCPTransport`).
 *
 * `ai` is pinned to 6.0.326, the release built on the same @ai-sdk/provider-utils (4.0.65) as
 * @ai-sdk/mcp 1.0.102: with two copies the tool types do not match and `generateText({ tools })`
 * does not type-check.
 *
 * `client.tools()` is what an application hands to `generateText`; here a scripted model
 * (`MockLanguageModelV3` from `ai/test`, no network) asks for `execute_code` once and then
 * answers, so the test runs the AI SDK's own tool loop headless: the tool call goes through
 * `@ai-sdk/mcp` to sluice, and the tool result the SDK feeds back to the model is sluice's.
 */
import { createMCPClient, type MCPClient } from '@ai-sdk/mcp'
import { Experimental_StdioMCPTransport } from '@ai-sdk/mcp/mcp-stdio'
import { generateText, stepCountIs } from 'ai'
import { MockLanguageModelV3 } from 'ai/test'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CODE, names, RESULT, RESULT_TEXT, startSluice, type Sluice } from './harness.js'

let sluice: Sluice
beforeAll(async () => {
  sluice = await startSluice()
})
afterAll(async () => {
  await sluice?.close()
})

const usage = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
}

/** A model that calls execute_code with CODE, then says "done". */
function scriptedModel(): MockLanguageModelV3 {
  return new MockLanguageModelV3({
    doGenerate: [
      {
        content: [
          {
            type: 'tool-call',
            toolCallId: 'call-1',
            toolName: 'execute_code',
            input: JSON.stringify({ code: CODE }),
          },
        ],
        finishReason: { unified: 'tool-calls', raw: undefined },
        usage,
        warnings: [],
      },
      {
        content: [{ type: 'text', text: 'done' }],
        finishReason: { unified: 'stop', raw: undefined },
        usage,
        warnings: [],
      },
    ],
  })
}

async function listAndRun(client: MCPClient): Promise<void> {
  expect(client.serverInfo.name).toBe('sluice')
  const { tools: listed } = await client.listTools()
  expect(names(listed)).toEqual(['execute_code', 'search_tools'])

  const tools = await client.tools()
  expect(Object.keys(tools).sort()).toEqual(['execute_code', 'search_tools'])
  const answer = await generateText({
    model: scriptedModel(),
    tools,
    prompt: 'echo hi through sluice',
    stopWhen: stepCountIs(2),
  })
  expect(answer.text).toBe('done')
  const results = answer.steps.flatMap((step) => step.toolResults)
  expect(results).toHaveLength(1)
  expect(results[0]).toMatchObject({ toolName: 'execute_code', input: { code: CODE } })
  const output = results[0]!.output as { content: unknown; structuredContent: unknown }
  expect(output.content).toEqual([{ type: 'text', text: RESULT_TEXT }])
  expect(output.structuredContent).toEqual(RESULT)
}

describe('@ai-sdk/mcp 1.x client', () => {
  it('sluice serve over Streamable HTTP with a bearer header: lists the tools, generateText runs execute_code', async () => {
    const client = await createMCPClient({
      transport: {
        type: 'http',
        url: sluice.url,
        headers: { Authorization: `Bearer ${sluice.token}` },
      },
    })
    try {
      await listAndRun(client)
    } finally {
      await client.close()
    }
  })

  it('sluice stdio through Experimental_StdioMCPTransport: lists the tools, generateText runs execute_code', async () => {
    const client = await createMCPClient({
      transport: new Experimental_StdioMCPTransport({ ...sluice.stdio, stderr: 'pipe' }),
    })
    try {
      await listAndRun(client)
    } finally {
      await client.close()
    }
  })
})
