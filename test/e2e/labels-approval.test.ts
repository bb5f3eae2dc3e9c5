/**
 * Data labels survive a durable approval (MCP 2026-07-28): the run stops at the approval, the
 * client retries with the answer, and the resumed run replays the calls before it from the
 * journal without the dispatcher. The journal keeps each call's labels, so a `confidential`
 * read replayed from it still denies the `egress` call after the approval. The real engine
 * behind the real gateway; the SDK 2.x client pinned to 2026-07-28 answers the elicitation.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { startGateway, type Gateway } from './helpers.js'

const records = mkdtempSync(join(tmpdir(), 'sluice-labels-approval-'))
const file = (name: string) => join(records, `${name}.jsonl`)

const recording = (name: string, extra: Record<string, unknown> = {}) => ({
  command: process.execPath,
  args: [SERVERS.recording],
  env: { RECORD_FILE: file(name) },
  ...extra,
})

const POLICY = `
rules:
  - id: our-servers
    effect: allow
    when: tool.server in ["crm", "bank", "mail"]
  - id: payments-need-a-human
    effect: approve
    when: tool.server == "bank" && tool.name == "pay"
  - id: no-egress-after-confidential
    effect: deny
    when: '"egress" in tool.labels && "confidential" in execution.labels'
`

/** What the fixture `name` recorded for `tool`. */
function recorded(name: string, tool: string): Array<Record<string, unknown>> {
  if (!existsSync(file(name))) return []
  return readFileSync(file(name), 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { tool: string; args: Record<string, unknown> })
    .filter((r) => r.tool === tool)
    .map((r) => r.args)
}

interface Outcome {
  ok: boolean
  result?: unknown
  calls: { tool: string; decision: string }[]
}

describe('labels across a durable approval (MCP 2026-07-28)', () => {
  let rt: TestRuntime
  let gw: Gateway
  beforeAll(async () => {
    rt = await testRuntime({
      policy: POLICY,
      config: {
        servers: {
          crm: recording('crm', { labels: ['confidential'] }),
          // Unlabelled: the approved call itself must not bring `confidential` back.
          bank: recording('bank'),
          mail: recording('mail', { tools: { send_email: { labels: ['egress'] } } }),
        },
      },
    })
    gw = await startGateway(rt)
  })
  afterAll(async () => {
    await gw?.close()
    await rt?.close()
    rmSync(records, { recursive: true, force: true })
  })

  async function execute(code: string, asked: string[]): Promise<Outcome> {
    const client = new Client(
      { name: 'labels-approval', version: '0.0.1' },
      {
        capabilities: { elicitation: { form: {} } },
        versionNegotiation: { mode: { pin: '2026-07-28' } },
      },
    )
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push((request.params as { message: string }).message)
      return { action: 'accept', content: { approve: true } }
    })
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)))
      const result = await client.callTool({ name: 'execute_code', arguments: { code } })
      return result.structuredContent as Outcome
    } finally {
      await client.close()
    }
  }

  it('still denies egress after a confidential read that was replayed from the journal', async () => {
    const asked: string[] = []
    const out = await execute(
      `await tools.crm.read_item({ id: 'before-approval' })
       const paid = await tools.bank.pay({ amount: 10, to: 'resumed' })
       const sent = await tools.mail.send_email({ to: 'bob@example.com', subject: 'after-approval' })
         .then(() => 'sent', (e) => e.code + ': ' + e.message)
       return { paid: paid.paid, sent }`,
      asked,
    )
    expect(asked).toHaveLength(1)
    expect(out).toMatchObject({
      ok: true,
      result: {
        paid: 10,
        sent: 'TOOL_DENIED: mail.send_email is not allowed: rule no-egress-after-confidential (tool labels: egress; execution labels: confidential)',
      },
    })
    expect(out.calls.map((c) => [c.tool, c.decision])).toEqual([
      ['crm.read_item', 'allow'],
      ['bank.pay', 'approve'],
      ['mail.send_email', 'deny'],
    ])
    // The read ran once (the resumed run answered it from the journal), the mail never.
    expect(recorded('crm', 'read_item')).toEqual([{ id: 'before-approval' }])
    expect(recorded('bank', 'pay')).toEqual([{ amount: 10, to: 'resumed' }])
    expect(recorded('mail', 'send_email')).toEqual([])
  })

  it('allows the same egress when nothing confidential came before the approval', async () => {
    const asked: string[] = []
    const out = await execute(
      `await tools.bank.pay({ amount: 20, to: 'clean' })
       return await tools.mail.send_email({ to: 'bob@example.com', subject: 'clean-run' })`,
      asked,
    )
    expect(asked).toHaveLength(1)
    expect(out).toMatchObject({ ok: true, result: 'sent to bob@example.com' })
    expect(recorded('mail', 'send_email').filter((a) => a.subject === 'clean-run')).toHaveLength(1)
  })
})
