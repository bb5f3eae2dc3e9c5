/**
 * The MCP surface over a real 127.0.0.1 port with the real SDK client: the tool list, results of
 * execute_code and search_tools, cancellation, progress, direct mode, approval by elicitation
 * (accept, decline, timeout, unsupported), and duplicate Authorization headers.
 */
import { request } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js'
import { buildApp, listen, type GatewayEngine } from '../../src/gateway/index.js'
import type { Engine } from '../../src/engine/index.js'
import {
  INIT_BODY,
  MCP_HEADERS,
  connectClient,
  fakeEngine,
  makeIdentity,
  type Identity,
} from './helpers.js'

// Compile-time proof that the real engine fits the gateway's structural view of it.
const engineFits = (e: Engine): GatewayEngine => e
void engineFits

let id: Identity
const cleanups: Array<() => Promise<void>> = []

beforeAll(async () => {
  id = await makeIdentity()
})
afterAll(() => id.cleanup())
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function serve(gateway: Record<string, unknown> = {}, engine = fakeEngine()) {
  const app: FastifyInstance = buildApp({ config: id.config(gateway), engine })
  const url = await listen(app, { host: '127.0.0.1', port: 0, print: () => {} })
  cleanups.push(() => app.close())
  return { url, engine }
}

async function client(
  url: string,
  sub = 'alice',
  capabilities: Record<string, unknown> = {},
): Promise<Client> {
  const { client: c } = await connectClient(url, { token: await id.token({ sub }), capabilities })
  cleanups.push(() => c.close())
  return c
}

function text(result: unknown): string {
  return (result as { content: Array<{ text: string }> }).content[0]!.text
}

describe('MCP surface', () => {
  it('lists exactly execute_code and search_tools, described for the calling principal', async () => {
    const { url } = await serve()
    const alice = await (await client(url, 'alice')).listTools()
    expect(alice.tools.map((t) => t.name)).toEqual(['execute_code', 'search_tools'])
    expect(alice.tools[0]!.description).toContain('Declarations for alice')
    expect(alice.tools[0]!.inputSchema).toMatchObject({ type: 'object', required: ['code'] })
    expect(alice.tools[0]!.outputSchema).toMatchObject({
      required: ['ok', 'result', 'logs', 'calls'],
    })
    const bob = await (await client(url, 'bob')).listTools()
    expect(bob.tools[0]!.description).toContain('Declarations for bob')
  })

  it("runs execute_code as the token's principal and returns structured and text results", async () => {
    const { url, engine } = await serve()
    const result = await (
      await client(url)
    ).callTool({ name: 'execute_code', arguments: { code: 'return 1' } })
    expect(result.isError).toBeUndefined()
    expect(result.structuredContent).toEqual({
      ok: true,
      result: { sub: 'alice', code: 'return 1' },
      logs: ['hello'],
      calls: [],
    })
    expect(text(result)).toBe('{"sub":"alice","code":"return 1"}\n\nlogs:\nhello')
    expect(engine.seen.principal).toMatchObject({
      sub: 'alice',
      iss: 'https://idp.test',
      authMethod: 'jwt',
    })
    expect(engine.seen.options?.inboundToken).toMatch(/^ey/)
    expect(engine.seen.options?.signal).toBeInstanceOf(AbortSignal)
  })

  it('marks a failed execution isError and renders the error with its position', async () => {
    const { url } = await serve()
    const result = await (
      await client(url)
    ).callTool({ name: 'execute_code', arguments: { code: 'fail' } })
    expect(result.isError).toBe(true)
    expect(result.structuredContent).toMatchObject({
      ok: false,
      result: null,
      error: { code: 'RUNTIME_ERROR', line: 2, column: 5 },
    })
    expect(text(result)).toBe(
      'logs:\nbefore\n\nerror RUNTIME_ERROR (line 2, column 5): x is not defined',
    )
  })

  it('answers INVALID_ARGS without code, and INTERNAL (no detail) when the engine throws', async () => {
    const { url } = await serve()
    const c = await client(url)
    const missing = await c.callTool({ name: 'execute_code', arguments: {} })
    expect(missing.structuredContent).toMatchObject({
      ok: false,
      error: { code: 'INVALID_ARGS', message: 'execute_code needs `code`, a string of TypeScript' },
    })
    const broken = await c.callTool({ name: 'execute_code', arguments: { code: 'throw' } })
    expect(broken.isError).toBe(true)
    expect(JSON.stringify(broken)).not.toContain('/srv/secret')
    expect(broken.structuredContent).toMatchObject({ error: { code: 'INTERNAL' } })
  })

  it('searches tools, with limit 1 to 50', async () => {
    const { url } = await serve()
    const c = await client(url)
    const found = await c.callTool({
      name: 'search_tools',
      arguments: { query: 'echo', limit: 50 },
    })
    expect(found.structuredContent).toEqual({
      matches: [
        {
          tool: 'demo.echo',
          declaration: 'echo(args: { message: string }): Promise<unknown>',
          score: 1,
        },
      ],
    })
    expect(text(found)).toBe('// demo.echo\necho(args: { message: string }): Promise<unknown>')
    const none = await c.callTool({ name: 'search_tools', arguments: { query: 'nothing' } })
    expect(text(none)).toBe('No matching tools.')
    const more = await c.callTool({ name: 'search_tools', arguments: { query: 'more' } })
    expect(more.structuredContent).toEqual({
      matches: [
        {
          tool: 'demo.echo',
          declaration: 'echo(args: { message: string }): Promise<unknown>',
          score: 1,
        },
      ],
      more: ['tools.demo.echo2'],
    })
    expect(text(more)).toBe(
      '// demo.echo\necho(args: { message: string }): Promise<unknown>\n\n' +
        'More matches (search for one by name to see it): tools.demo.echo2',
    )
    const tooMany = await c.callTool({
      name: 'search_tools',
      arguments: { query: 'echo', limit: 51 },
    })
    expect(tooMany.isError).toBe(true)
    expect(text(tooMany)).toBe('search_tools: `limit` must be an integer from 1 to 50')
  })

  it('answers an unknown tool with a JSON-RPC -32602 error, as the spec says', async () => {
    const { url } = await serve()
    const err = await (await client(url)).callTool({ name: 'nope', arguments: {} }).then(
      () => undefined,
      (e: unknown) => e as { code?: unknown; message?: unknown },
    )
    expect(err?.code).toBe(-32602)
    expect(err?.message).toBe(
      'MCP error -32602: Unknown tool "nope". Available: execute_code, search_tools.',
    )
  })

  it('passes client cancellation to the engine as an aborted signal', async () => {
    const { url, engine } = await serve()
    const controller = new AbortController()
    const call = (await client(url)).callTool(
      { name: 'execute_code', arguments: { code: 'wait' } },
      undefined,
      { signal: controller.signal },
    )
    await expect.poll(() => engine.seen.code).toBe('wait')
    controller.abort()
    await expect(call).rejects.toThrow()
    await expect.poll(() => engine.seen.aborted).toBe(true)
  })

  it('forwards engine progress as progress notifications', async () => {
    const { url } = await serve()
    const messages: string[] = []
    await (
      await client(url)
    ).callTool({ name: 'execute_code', arguments: { code: 'progress' } }, undefined, {
      onprogress: (p) => messages.push(String(p.message)),
    })
    expect(messages).toEqual(['step one', 'step two'])
  })

  it('direct mode lists allowed upstream tools as <server>__<tool> and proxies calls', async () => {
    const { url, engine } = await serve({ directMode: true })
    const c = await client(url)
    const { tools } = await c.listTools()
    expect(tools.map((t) => t.name)).toEqual(['execute_code', 'search_tools', 'demo__echo'])
    expect(tools[2]!.inputSchema).toMatchObject({ properties: { message: { type: 'string' } } })
    const result = await c.callTool({ name: 'demo__echo', arguments: { message: 'hi' } })
    expect(text(result)).toBe('direct demo.echo')
    expect(engine.seen.direct).toMatchObject({
      tool: { server: 'demo', name: 'echo' },
      args: { message: 'hi' },
    })
    // An unknown name lists the direct tools too.
    const unknown = await c
      .callTool({ name: 'demo__nope', arguments: {} })
      .catch((e: unknown) => e as Error)
    expect((unknown as Error).message).toBe(
      'MCP error -32602: Unknown tool "demo__nope". Available: execute_code, search_tools, demo__echo.',
    )
  })

  it('JWT-19 refuses two Authorization headers with 401', async () => {
    const { url } = await serve()
    const token = await id.token()
    const u = new URL(url)
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'POST',
          headers: [
            'host',
            u.host,
            ...Object.entries(MCP_HEADERS).flat(),
            'authorization',
            `Bearer ${token}`,
            'authorization',
            `Bearer ${token}`,
          ],
        },
        (r) => {
          let body = ''
          r.setEncoding('utf8')
            .on('data', (d: string) => (body += d))
            .on('end', () => resolve({ status: r.statusCode ?? 0, body }))
        },
      )
      req.on('error', reject)
      req.end(JSON.stringify(INIT_BODY))
    })
    expect(res.status).toBe(401)
    expect(JSON.parse(res.body).error.message).toBe(
      'Unauthorized: send exactly one Authorization header',
    )
  })
})

describe('approval by elicitation', () => {
  const form = { elicitation: { form: {} } }

  async function approvalWith(
    answer: (message: string) => Promise<ElicitResult>,
    gateway: Record<string, unknown> = {},
  ) {
    const { url } = await serve(gateway)
    const c = await client(url, 'alice', form)
    const asked: string[] = []
    c.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params.message)
      return answer(req.params.message)
    })
    const result = await c.callTool({ name: 'execute_code', arguments: { code: 'approve' } })
    return { result, asked }
  }

  it('asks the client with the tool, the arguments and the rule, and runs on accept', async () => {
    const { result, asked } = await approvalWith(async () => ({
      action: 'accept',
      content: { approve: true },
    }))
    expect(asked).toEqual([
      'Allow the call payments.pay?\nArguments: { amount: 5000 }\nRule big-payments-need-a-human: payments over 1000 need a human',
    ])
    expect(result.structuredContent).toMatchObject({ ok: true, result: { answer: 'accept' } })
  })

  it('treats decline, cancel and approve=false as decline', async () => {
    for (const reply of [
      { action: 'decline' },
      { action: 'cancel' },
      { action: 'accept', content: { approve: false } },
    ] as ElicitResult[]) {
      const { result } = await approvalWith(async () => reply)
      expect(result.structuredContent, JSON.stringify(reply)).toMatchObject({
        ok: false,
        error: { code: 'APPROVAL_DENIED', message: 'approval decline' },
      })
    }
  })

  it('answers timeout when nobody answers within approvalTimeoutMs', async () => {
    const { result } = await approvalWith(() => new Promise<ElicitResult>(() => {}), {
      approvalTimeoutMs: 200,
    })
    expect(result.structuredContent).toMatchObject({
      ok: false,
      error: { message: 'approval timeout' },
    })
  })

  it('answers unsupported when the client has no elicitation capability', async () => {
    const { url } = await serve()
    const result = await (
      await client(url)
    ).callTool({ name: 'execute_code', arguments: { code: 'approve' } })
    expect(result.structuredContent).toMatchObject({
      ok: false,
      error: { message: 'approval unsupported' },
    })
  })
})
