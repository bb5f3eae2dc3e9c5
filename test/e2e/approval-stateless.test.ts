/**
 * Durable approvals on MCP 2026-07-28 (multi round-trip): the real engine behind the real
 * gateway, the SDK 2.x client pinned to 2026-07-28 answering the embedded elicitation. An
 * approval stops the execution; the client retries with the answer and the `requestState`; the
 * run replays the journal of the calls before the approval (the upstream is not called twice)
 * and goes on. A used, forged, expired or foreign answer is APPROVAL_DENIED with its reason; a
 * script that does not repeat its calls is REPLAY_DIVERGED.
 */
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { APPROVAL_POLICY, readAudit, startGateway, type Gateway } from './helpers.js'

type Answer = { action: 'accept'; content: { approve: boolean } } | { action: 'decline' }

interface Posted {
  url: string
  headers: Headers
  body: Record<string, unknown>
}

interface Fixture {
  rt: TestRuntime
  gw: Gateway
  close(): Promise<void>
}

async function fixture(approvalTimeoutMs: number, directMode = false): Promise<Fixture> {
  const rt = await testRuntime({
    recording: true,
    policy: APPROVAL_POLICY,
    config: {
      audit: { file: 'audit.jsonl', fsync: false },
      gateway: { approvalTimeoutMs, directMode },
    },
  })
  const gw = await startGateway(rt)
  return {
    rt,
    gw,
    close: async () => {
      await gw.close()
      await rt.close()
    },
  }
}

/** A 2026-07-28 client that answers approvals with `answer` and records every POST it makes. */
async function withClient<T>(
  f: Fixture,
  answer: (message: string) => Promise<Answer>,
  fn: (client: Client, posted: Posted[], asked: string[]) => Promise<T>,
): Promise<T> {
  const posted: Posted[] = []
  const asked: string[] = []
  const recording: typeof fetch = async (input, init) => {
    if (init?.method === 'POST' && typeof init.body === 'string') {
      posted.push({
        url: String(input),
        headers: new Headers(init.headers),
        body: JSON.parse(init.body) as Record<string, unknown>,
      })
    }
    return fetch(input, init)
  }
  const client = new Client(
    { name: 'approval-2026', version: '0.0.1' },
    {
      capabilities: { elicitation: { form: {} } },
      versionNegotiation: { mode: { pin: '2026-07-28' } },
    },
  )
  client.setRequestHandler('elicitation/create', async (request) => {
    const message = (request.params as { message: string }).message
    asked.push(message)
    return answer(message)
  })
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(f.gw.url), { fetch: recording }))
    return await fn(client, posted, asked)
  } finally {
    await client.close()
  }
}

interface Outcome {
  ok: boolean
  result?: unknown
  error?: { code: string; message: string }
  calls: { tool: string; ok: boolean; decision: string; code?: string }[]
}

async function execute(client: Client, code: string): Promise<Outcome> {
  const result = await client.callTool({ name: 'execute_code', arguments: { code } })
  return result.structuredContent as Outcome
}

/** POSTs `body` again as the client did, and reads the JSON-RPC answer (JSON or SSE). */
async function repost(
  like: Posted,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const response = await fetch(like.url, {
    method: 'POST',
    headers: like.headers,
    body: JSON.stringify(body),
  })
  const text = await response.text()
  if ((response.headers.get('content-type') ?? '').includes('application/json'))
    return JSON.parse(text) as Record<string, unknown>
  const data = text
    .split('\n')
    .filter((line) => line.startsWith('data:'))
    .map((line) => JSON.parse(line.slice(5)) as Record<string, unknown>)
    .find((message) => 'result' in message || 'error' in message)
  if (data === undefined) throw new Error(`no JSON-RPC answer in: ${text}`)
  return data
}

/** The `tools/call` POSTs that carried an approval answer (the retries). */
const retries = (posted: Posted[]) =>
  posted.filter(
    (p) =>
      p.body['method'] === 'tools/call' &&
      typeof (p.body['params'] as Record<string, unknown>)['requestState'] === 'string',
  )

const accept = async (): Promise<Answer> => ({ action: 'accept', content: { approve: true } })

describe('durable approvals over MCP 2026-07-28 (multi round-trip)', () => {
  let f: Fixture
  beforeAll(async () => {
    f = await fixture(60_000)
  })
  afterAll(() => f?.close())

  const recorded = (tool: string, key: string, value: unknown) =>
    f.rt.recorded().filter((r) => r.tool === tool && r.args[key] === value)

  it('stops at the approval, resumes on accept, and calls nothing upstream twice', async () => {
    const out = await withClient(f, accept, async (client, posted, asked) => {
      const out = await execute(
        client,
        `const before = await tools.rec.read_item({ id: 'before-accept' })
         const paid = await tools.rec.pay({ amount: 5000, to: 'accepted' })
         const after = await tools.rec.read_item({ id: 'after-accept' })
         return { before, paid, after }`,
      )
      expect(asked).toEqual([
        'Allow the call rec.pay?\nArguments: {"amount":5000,"to":"accepted"}\n' +
          'Policy: rule "big-payments-need-a-human" asks a human to approve this call: payments over 1000 need a human',
      ])
      // One call that got the question, one retry that carried the answer.
      expect(posted.filter((p) => p.body['method'] === 'tools/call')).toHaveLength(2)
      expect(retries(posted)).toHaveLength(1)
      return out
    })
    expect(out).toMatchObject({ ok: true, result: { paid: { paid: 5000 } } })
    expect(out.calls).toEqual([
      expect.objectContaining({ tool: 'rec.read_item', ok: true, decision: 'allow' }),
      expect.objectContaining({ tool: 'rec.pay', ok: true, decision: 'approve' }),
      expect.objectContaining({ tool: 'rec.read_item', ok: true, decision: 'allow' }),
    ])
    expect(recorded('read_item', 'id', 'before-accept')).toHaveLength(1)
    expect(recorded('pay', 'to', 'accepted')).toHaveLength(1)
    expect(recorded('read_item', 'id', 'after-accept')).toHaveLength(1)
  })

  it('refuses the call on decline; the script goes on and the upstream never sees it', async () => {
    const out = await withClient(
      f,
      async () => ({ action: 'decline' }),
      (client) =>
        execute(
          client,
          `await tools.rec.read_item({ id: 'before-decline' })
           try { await tools.rec.pay({ amount: 5000, to: 'declined' }) } catch (e) { return e.code }`,
        ),
    )
    expect(out).toMatchObject({ ok: true, result: 'APPROVAL_DENIED' })
    expect(out.calls).toEqual([
      expect.objectContaining({ tool: 'rec.read_item', ok: true }),
      expect.objectContaining({ tool: 'rec.pay', ok: false, code: 'APPROVAL_DENIED' }),
    ])
    expect(recorded('pay', 'to', 'declined')).toEqual([])
    expect(recorded('read_item', 'id', 'before-decline')).toHaveLength(1)
  })

  it('asks once per call over several rounds; each approved call runs once', async () => {
    const out = await withClient(f, accept, async (client, posted, asked) => {
      const out = await execute(
        client,
        `const a = await tools.rec.pay({ amount: 2000, to: 'round-1' })
         const b = await tools.rec.pay({ amount: 3000, to: 'round-2' })
         return [a.paid, b.paid]`,
      )
      expect(asked).toHaveLength(2)
      expect(retries(posted)).toHaveLength(2)
      return out
    })
    expect(out).toMatchObject({ ok: true, result: [2000, 3000] })
    expect(recorded('pay', 'to', 'round-1')).toHaveLength(1)
    expect(recorded('pay', 'to', 'round-2')).toHaveLength(1)
  })

  it('holds the calls that were in flight: parallel calls before the approval run once', async () => {
    const out = await withClient(f, accept, (client) =>
      execute(
        client,
        `const [x, y, p] = await Promise.all([
           tools.rec.read_item({ id: 'parallel-x' }),
           tools.rec.read_item({ id: 'parallel-y' }),
           tools.rec.pay({ amount: 4000, to: 'parallel' }),
         ])
         return p.paid`,
      ),
    )
    expect(out).toMatchObject({ ok: true, result: 4000 })
    expect(recorded('read_item', 'id', 'parallel-x')).toHaveLength(1)
    expect(recorded('read_item', 'id', 'parallel-y')).toHaveLength(1)
    expect(recorded('pay', 'to', 'parallel')).toHaveLength(1)
  })

  it('replays Math.random: the resumed run draws the same numbers', async () => {
    const out = await withClient(f, accept, (client) =>
      execute(
        client,
        `const id = 'random-' + Math.random()
         await tools.rec.read_item({ id })
         await tools.rec.pay({ amount: 5000, to: id })
         return id`,
      ),
    )
    expect(out.ok).toBe(true)
    const id = out.result as string
    expect(recorded('read_item', 'id', id)).toHaveLength(1)
    expect(recorded('pay', 'to', id)).toHaveLength(1)
  })

  it('stops a script whose calls differ after the approval with REPLAY_DIVERGED', async () => {
    const out = await withClient(
      f,
      async () => {
        // The resumed run must start at a later millisecond than the first.
        const at = Date.now()
        while (Date.now() <= at + 1) await new Promise((resolve) => setImmediate(resolve))
        return { action: 'accept', content: { approve: true } }
      },
      (client) =>
        execute(
          client,
          `await tools.rec.read_item({ id: 'clock-' + Date.now() })
           await tools.rec.pay({ amount: 5000, to: 'diverged' })`,
        ),
    )
    expect(out.ok).toBe(false)
    expect(out.error).toEqual({
      code: 'REPLAY_DIVERGED',
      message:
        'the script did not repeat its calls when it resumed after the approval: call 1 was rec.read_item with other arguments than before the approval. A resumed execution replays the calls made before the approval; keep those calls independent of the clock and of which parallel call finishes first',
    })
    expect(recorded('pay', 'to', 'diverged')).toEqual([])
  })

  it('uses an answer once: the same retry again is APPROVAL_DENIED and runs nothing', async () => {
    await withClient(f, accept, async (client, posted) => {
      const out = await execute(client, `return await tools.rec.pay({ amount: 5000, to: 'once' })`)
      expect(out.ok).toBe(true)
      const [retry] = retries(posted)
      const again = await repost(retry!, { ...retry!.body, id: 9001 })
      const result = again['result'] as { structuredContent: Outcome; isError: boolean }
      expect(result.isError).toBe(true)
      expect(result.structuredContent.error).toEqual({
        code: 'APPROVAL_DENIED',
        message:
          'the approval is no longer pending: it was answered already (an answer is used once), or the store lost it (the in-process store does not survive a restart; store.redis does). Run the script again to ask again',
      })
    })
    expect(recorded('pay', 'to', 'once')).toHaveLength(1)
  })

  it('refuses a forged requestState and an answer for other code', async () => {
    const code = `return await tools.rec.pay({ amount: 5000, to: 'forged' })`
    // A request as the client sends it, to send again by hand.
    const first = await withClient(
      f,
      async () => ({ action: 'decline' }),
      async (client, posted) => {
        await execute(client, code)
        return posted.find((p) => p.body['method'] === 'tools/call')!
      },
    )
    let id = 9100
    const call = async (params: Record<string, unknown>) => {
      const answer = await repost(first, { ...first.body, id: id++, params })
      return answer['result'] as Record<string, unknown>
    }
    const params = first.body['params'] as Record<string, unknown>
    const accepted = { approve: { action: 'accept', content: { approve: true } } }
    const errorOf = (result: Record<string, unknown>) =>
      (result['structuredContent'] as Outcome).error
    expect(
      errorOf(await call({ ...params, requestState: 'not-one-of-ours', inputResponses: accepted })),
    ).toEqual({
      code: 'APPROVAL_DENIED',
      message:
        'the answer names no approval this gateway asked for (its requestState is not one sluice issued); run the script again to ask again',
    })
    // Well-formed, never issued.
    const neverIssued = `${(Date.now() + 60_000).toString(36)}.${'A'.repeat(24)}`
    expect(
      errorOf(await call({ ...params, requestState: neverIssued, inputResponses: accepted })),
    ).toMatchObject({
      code: 'APPROVAL_DENIED',
      message: expect.stringContaining('no longer pending'),
    })
    // A real question, answered for other code.
    const asked = await call(params)
    expect(asked['resultType']).toBe('input_required')
    const other = `return await tools.rec.pay({ amount: 5000, to: 'other-code' })`
    expect(
      errorOf(
        await call({
          ...params,
          arguments: { code: other },
          requestState: asked['requestState'],
          inputResponses: accepted,
        }),
      ),
    ).toEqual({
      code: 'APPROVAL_DENIED',
      message:
        'the code differs from the code that asked for this approval: an answer resumes only the execution that asked. Run the script again to ask again',
    })
    expect(recorded('pay', 'to', 'forged')).toEqual([])
    expect(recorded('pay', 'to', 'other-code')).toEqual([])
  })

  it('records the stop and the resumption under one execution id in the audit log', async () => {
    const file = join(f.rt.dir, 'audit.jsonl')
    const from = readAudit(file).length
    await withClient(f, accept, (client) =>
      execute(client, `return await tools.rec.pay({ amount: 5000, to: 'audited' })`),
    )
    const records = readAudit(file).slice(from)
    const executions = records.filter((r) => r.type.startsWith('execution.'))
    expect(executions.map((r) => [r.type, r.status])).toEqual([
      ['execution.start', undefined],
      ['execution.end', 'suspended'],
      ['execution.start', 'resumed'],
      ['execution.end', 'ok'],
    ])
    expect(new Set(executions.map((r) => r.executionId)).size).toBe(1)
    expect(
      records.filter((r) => r.type === 'call.decision').map((r) => [r.decision, r.status]),
    ).toEqual([
      ['approve', 'suspended'],
      ['approved', undefined],
    ])
  })
})

describe('durable approvals of a direct-mode tool over MCP 2026-07-28', () => {
  let f: Fixture
  beforeAll(async () => {
    f = await fixture(60_000, true)
  })
  afterAll(() => f?.close())

  const recorded = (to: string) =>
    f.rt.recorded().filter((r) => r.tool === 'pay' && r.args['to'] === to)
  const pay = (client: Client, to: string) =>
    client.callTool({ name: 'rec__pay', arguments: { amount: 5000, to } })

  it('asks, and runs the call once on accept', async () => {
    const result = await withClient(f, accept, async (client, posted, asked) => {
      const result = await pay(client, 'direct-accepted')
      expect(asked).toEqual([
        'Allow the call rec.pay?\nArguments: {"amount":5000,"to":"direct-accepted"}\n' +
          'Policy: rule "big-payments-need-a-human" asks a human to approve this call: payments over 1000 need a human',
      ])
      expect(retries(posted)).toHaveLength(1)
      return result
    })
    expect(result.isError).toBeUndefined()
    expect(result.structuredContent).toEqual({ paid: 5000 })
    expect(recorded('direct-accepted')).toHaveLength(1)
  })

  it('refuses on decline, and the upstream never sees the call', async () => {
    const result = await withClient(
      f,
      async () => ({ action: 'decline' }),
      (client) => pay(client, 'direct-declined'),
    )
    expect(result).toMatchObject({
      isError: true,
      content: [
        {
          type: 'text',
          text: 'APPROVAL_DENIED: rec.pay was not run: the human approver declined it (rule big-payments-need-a-human)',
        },
      ],
    })
    expect(recorded('direct-declined')).toEqual([])
  })

  it('uses an answer once, and only for the call that asked', async () => {
    await withClient(f, accept, async (client, posted) => {
      await pay(client, 'direct-once')
      const [retry] = retries(posted)
      const again = await repost(retry!, { ...retry!.body, id: 9101 })
      expect(again['result']).toMatchObject({
        isError: true,
        content: [
          {
            text: 'APPROVAL_DENIED: the approval is no longer pending: it was answered already (an answer is used once), or the store lost it (the in-process store does not survive a restart; store.redis does). Make the call again to ask again',
          },
        ],
      })
      // A fresh question, answered for other arguments.
      const first = posted.find((p) => p.body['method'] === 'tools/call')!
      const asked = await repost(first, { ...first.body, id: 9103 })
      const state = (asked['result'] as { requestState: string }).requestState
      const params = retry!.body['params'] as Record<string, unknown>
      const other = await repost(retry!, {
        ...retry!.body,
        id: 9104,
        params: { ...params, arguments: { amount: 5000, to: 'direct-other' }, requestState: state },
      })
      expect(other['result']).toMatchObject({
        isError: true,
        content: [
          {
            text: 'APPROVAL_DENIED: the tool or its arguments differ from the call that asked for this approval: an answer resumes only that call. Make the call again to ask again',
          },
        ],
      })
    })
    expect(recorded('direct-once')).toHaveLength(1)
    expect(recorded('direct-other')).toEqual([])
  })
})

describe('durable approvals of prompts and resources over MCP 2026-07-28', () => {
  const DOC = 'demo://resource/static/document/architecture.md'
  let f: Fixture
  beforeAll(async () => {
    const rt = await testRuntime({
      policy: `
rules:
  - id: everything
    effect: allow
    when: tool.server == "everything"
  - id: weather-needs-a-human
    effect: approve
    description: a human reads every weather prompt
    when: tool.kind == "prompt" && tool.name == "args-prompt"
  - id: documents-need-a-human
    effect: approve
    when: tool.kind == "resource" && tool.name.startsWith("demo://resource/static/document/")
`,
      config: {
        servers: { everything: { command: process.execPath, args: [SERVERS.everything, 'stdio'] } },
        audit: { file: 'audit.jsonl', fsync: false },
      },
    })
    const gw = await startGateway(rt)
    f = {
      rt,
      gw,
      close: async () => {
        await gw.close()
        await rt.close()
      },
    }
  }, 30_000)
  afterAll(() => f?.close())

  it('asks before a prompt renders, and renders it once on accept', async () => {
    await withClient(f, accept, async (client, posted, asked) => {
      const result = await client.getPrompt({
        name: 'everything__args-prompt',
        arguments: { city: 'Paris' },
      })
      expect(result.messages).toEqual([
        { role: 'user', content: { type: 'text', text: "What's weather in Paris?" } },
      ])
      expect(asked).toEqual([
        'Allow the call everything.prompt/args-prompt?\nArguments: {"city":"Paris"}\n' +
          'Policy: rule "weather-needs-a-human" asks a human to approve this call: a human reads every weather prompt',
      ])
      const retried = posted.filter(
        (p) =>
          p.body['method'] === 'prompts/get' &&
          typeof (p.body['params'] as Record<string, unknown>)['requestState'] === 'string',
      )
      expect(retried).toHaveLength(1)
    })
    const records = readAudit(join(f.rt.dir, 'audit.jsonl')).filter(
      (r) => r.tool === 'everything.prompt/args-prompt',
    )
    expect(records.map((r) => [r.type, r.status ?? r.decision])).toEqual([
      ['call.decision', 'suspended'],
      ['call.decision', 'approved'],
      ['call.result', 'ok'],
    ])
  })

  it('refuses a resource on decline with APPROVAL_DENIED, naming the rule', async () => {
    const failure = await withClient(
      f,
      async () => ({ action: 'decline' }),
      (client) =>
        client.readResource({ uri: `sluice://everything/${DOC}` }).then(
          () => undefined,
          (e: unknown) => e as Error & { data?: unknown },
        ),
    )
    expect(failure?.message).toContain(
      `everything.resource/${DOC} was not read: the human approver declined it (rule documents-need-a-human)`,
    )
    expect(failure?.data).toEqual({ code: 'APPROVAL_DENIED' })
  })

  it('reads a resource on accept', async () => {
    const result = await withClient(f, accept, (client) =>
      client.readResource({ uri: `sluice://everything/${DOC}` }),
    )
    expect(result.contents[0]).toMatchObject({ uri: `sluice://everything/${DOC}` })
  })
})

describe('an approval answered after gateway.approvalTimeoutMs', () => {
  let f: Fixture
  beforeAll(async () => {
    f = await fixture(200)
  })
  afterAll(() => f?.close())

  it('is APPROVAL_DENIED "expired", and the call never runs', async () => {
    const out = await withClient(
      f,
      async () => {
        // Answer only once the approval has expired.
        const until = Date.now() + 400
        while (Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50))
        return { action: 'accept', content: { approve: true } }
      },
      (client) => execute(client, `return await tools.rec.pay({ amount: 5000, to: 'late' })`),
    )
    expect(out.ok).toBe(false)
    expect(out.error?.code).toBe('APPROVAL_DENIED')
    expect(out.error?.message).toMatch(
      /^the approval expired \d+ s ago: no human answered within gateway\.approvalTimeoutMs \(200 ms\)\. The calls before it ran, nothing after it; run the script again to ask again$/,
    )
    expect(f.rt.recorded().filter((r) => r.tool === 'pay' && r.args['to'] === 'late')).toEqual([])
  })
})
