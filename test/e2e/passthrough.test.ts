/**
 * Upstream prompts and resources behind sluice (issue 13, item 7): a real server-everything,
 * the real gateway over HTTP, real tokens. Prompts and resources are namespaced per server,
 * listed and served under the same CEL policy as tools (`tool.kind`), audited, and every refusal
 * is a JSON-RPC error that says what happened. An unknown outer tool is a `-32602` protocol error.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startIdp, type Idp } from '../helpers/idp.js'
import { SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { connect, readAudit, startGateway, type Gateway } from './helpers.js'

const AUDIENCE = 'https://sluice.test/mcp'
const POLICY = `
rules:
  - id: everything-tools
    effect: allow
    when: tool.server == "everything" && tool.kind == "tool"
  - id: some-prompts
    effect: allow
    when: tool.kind == "prompt" && tool.name in ["simple-prompt", "args-prompt", "resource-prompt"]
  - id: not-in-texas
    effect: deny
    when: tool.kind == "prompt" && "state" in args && args.state == "TX"
  - id: static-documents
    effect: allow
    when: tool.kind == "resource" && tool.name.startsWith("demo://resource/static/document/")
  - id: dynamic-text-needs-scope
    effect: allow
    when: >-
      tool.kind == "resource" && tool.name.startsWith("demo://resource/dynamic/text/")
      && "res:read" in principal.scopes
`
const DOC = 'demo://resource/static/document/architecture.md'

let idp: Idp
let rt: TestRuntime
let gw: Gateway
let dir: string
let auditFile: string
let plain: Client
let scoped: Client

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-passthrough-'))
  auditFile = join(dir, 'audit.jsonl')
  idp = await startIdp()
  rt = await testRuntime({
    policy: POLICY,
    config: {
      servers: { everything: { command: process.execPath, args: [SERVERS.everything, 'stdio'] } },
      identity: {
        audience: AUDIENCE,
        issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
      },
      audit: { file: auditFile },
    },
  })
  gw = await startGateway(rt)
  plain = await connect(gw.url, { token: await idp.mint({ sub: 'pat', aud: AUDIENCE }) })
  scoped = await connect(gw.url, {
    token: await idp.mint({ sub: 'sam', aud: AUDIENCE, scope: 'res:read' }),
  })
})
afterAll(async () => {
  await plain?.close()
  await scoped?.close()
  await gw?.close()
  await rt?.close()
  await idp?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** The JSON-RPC error a request failed with. */
async function rpcError(request: Promise<unknown>): Promise<McpError> {
  const err = await request.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(McpError)
  return err as McpError
}

describe('prompts', () => {
  it('announces prompts and resources and lists only the prompts policy allows, namespaced', async () => {
    expect(plain.getServerCapabilities()).toMatchObject({ prompts: {}, resources: {} })
    const { prompts } = await plain.listPrompts()
    expect(prompts.map((p) => p.name)).toEqual([
      'everything__simple-prompt',
      'everything__args-prompt',
      'everything__resource-prompt',
    ])
    expect(prompts[1]?.arguments).toEqual([
      { name: 'city', description: 'Name of the city', required: true },
      { name: 'state', required: false },
    ])
  })

  it('renders an allowed prompt with its arguments and audits decision and result', async () => {
    const result = await plain.getPrompt({
      name: 'everything__args-prompt',
      arguments: { city: 'Paris' },
    })
    expect(result.messages).toEqual([
      { role: 'user', content: { type: 'text', text: "What's weather in Paris?" } },
    ])
    const records = readAudit(auditFile).filter((r) => r.tool === 'everything.prompt/args-prompt')
    expect(records.map((r) => [r.type, r.decision ?? r.status, r.ruleId])).toEqual([
      ['call.decision', 'allow', 'some-prompts'],
      ['call.result', 'ok', undefined],
    ])
    expect(records[0]?.principal?.sub).toBe('pat')
  })

  it('refuses a prompt whose arguments a deny rule matches, naming the rule', async () => {
    const err = await rpcError(
      plain.getPrompt({
        name: 'everything__args-prompt',
        arguments: { city: 'Austin', state: 'TX' },
      }),
    )
    expect(err.code).toBe(-32602)
    expect(err.message).toBe(
      'MCP error -32602: prompt everything.prompt/args-prompt is not allowed: denied by rule "not-in-texas"',
    )
    expect(err.data).toEqual({ code: 'TOOL_DENIED' })
  })

  it('says a hidden prompt is not allowed, and an unknown one that it is unknown', async () => {
    const hidden = await rpcError(plain.getPrompt({ name: 'everything__completable-prompt' }))
    expect(hidden.code).toBe(-32602)
    expect(hidden.data).toEqual({ code: 'TOOL_DENIED' })
    expect(hidden.message).toContain('prompt everything.prompt/completable-prompt is not allowed')
    const unknown = await rpcError(plain.getPrompt({ name: 'everything__no-such-prompt' }))
    expect(unknown.message).toBe('MCP error -32602: unknown prompt everything__no-such-prompt')
    expect(unknown.data).toEqual({ code: 'UNKNOWN_TOOL' })
    const noServer = await rpcError(plain.getPrompt({ name: 'simple-prompt' }))
    expect(noServer.message).toBe('MCP error -32602: unknown prompt simple-prompt')
  })

  it('namespaces the resource a prompt embeds, so the client can read it back through sluice', async () => {
    const result = await plain.getPrompt({
      name: 'everything__resource-prompt',
      arguments: { resourceType: 'Text', resourceId: '1' },
    })
    const embedded = result.messages.map((m) => m.content).find((c) => c.type === 'resource')
    expect(embedded).toMatchObject({
      resource: { uri: 'sluice://everything/demo://resource/dynamic/text/1' },
    })
  })
})

describe('resources', () => {
  it('lists the allowed resources with namespaced URIs', async () => {
    const { resources } = await plain.listResources()
    expect(resources.length).toBeGreaterThan(0)
    for (const r of resources)
      expect(r.uri).toMatch(/^sluice:\/\/everything\/demo:\/\/resource\/static\/document\//)
    expect(resources.map((r) => r.uri)).toContain(`sluice://everything/${DOC}`)
  })

  it('lists a template only for the principal a rule allows it to', async () => {
    const forPlain = await plain.listResourceTemplates()
    expect(forPlain.resourceTemplates).toEqual([])
    const forScoped = await scoped.listResourceTemplates()
    expect(forScoped.resourceTemplates.map((t) => t.uriTemplate)).toEqual([
      'sluice://everything/demo://resource/dynamic/text/{resourceId}',
    ])
  })

  it('reads an allowed resource; its contents carry the namespaced URI', async () => {
    const { contents } = await plain.readResource({ uri: `sluice://everything/${DOC}` })
    expect(contents).toHaveLength(1)
    expect(contents[0]).toMatchObject({
      uri: `sluice://everything/${DOC}`,
      mimeType: 'text/markdown',
    })
    expect((contents[0] as { text?: string }).text?.length).toBeGreaterThan(0)
  })

  it('reads a templated resource for the scoped principal and refuses it for the other', async () => {
    const uri = 'sluice://everything/demo://resource/dynamic/text/7'
    const { contents } = await scoped.readResource({ uri })
    expect(contents[0]).toMatchObject({ uri, mimeType: 'text/plain' })
    const denied = await rpcError(plain.readResource({ uri }))
    expect(denied.code).toBe(-32602)
    expect(denied.message).toBe(
      'MCP error -32602: resource everything.resource/demo://resource/dynamic/text/7 is not allowed: denied: no rule allows this call (deny by default)',
    )
    expect(denied.data).toEqual({ code: 'TOOL_DENIED' })
  })

  it('answers a URI that is not namespaced with where sluice serves resources', async () => {
    const err = await rpcError(plain.readResource({ uri: DOC }))
    expect(err.code).toBe(-32602)
    expect(err.message).toBe(
      `MCP error -32602: unknown resource ${DOC}: sluice serves resources as sluice://<server>/<uri>, from resources/list`,
    )
    const noServer = await rpcError(plain.readResource({ uri: `sluice://nowhere/${DOC}` }))
    expect(noServer.data).toEqual({ code: 'UNKNOWN_TOOL' })
  })
})

describe('an unknown outer tool', () => {
  it('is a JSON-RPC -32602 error, not a tool result', async () => {
    const err = await rpcError(plain.callTool({ name: 'everything__echo', arguments: {} }))
    expect(err.code).toBe(-32602)
    expect(err.message).toBe(
      'MCP error -32602: Unknown tool "everything__echo". Available: execute_code, search_tools.',
    )
  })
})
