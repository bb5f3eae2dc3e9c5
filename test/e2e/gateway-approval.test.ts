/**
 * Human approval end to end: the real engine behind the real gateway, the real SDK client
 * answering elicitation. A payment above 1000 runs only when the human accepts; decline, no
 * answer within `gateway.approvalTimeoutMs`, and a client without elicitation are refused with
 * APPROVAL_DENIED, the upstream is never called, and the audit log records every outcome.
 */
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import {
  APPROVAL_POLICY,
  connect,
  execute,
  readAudit,
  startGateway,
  type Gateway,
} from './helpers.js'

const APPROVAL_TIMEOUT_MS = 300

let rt: TestRuntime
let gw: Gateway
let auditFile: string
const clients: Client[] = []

beforeAll(async () => {
  rt = await testRuntime({
    recording: true,
    policy: APPROVAL_POLICY,
    config: {
      audit: { file: 'audit.jsonl', fsync: false },
      gateway: { approvalTimeoutMs: APPROVAL_TIMEOUT_MS },
    },
  })
  auditFile = join(rt.dir, 'audit.jsonl')
  gw = await startGateway(rt)
})
afterAll(async () => {
  await gw?.close()
  await rt?.close()
})
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

async function client(
  answer?: (message: string) => Promise<ElicitResult>,
): Promise<{ client: Client; asked: string[] }> {
  const c = await connect(gw.url, { elicitation: answer !== undefined })
  clients.push(c)
  const asked: string[] = []
  if (answer !== undefined) {
    c.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(req.params.message)
      return answer(req.params.message)
    })
  }
  return { client: c, asked }
}

/** Pays `amount` to a unique payee so the recorder and the audit log can be matched to this call. */
async function pay(c: Client, amount: number, to: string) {
  return execute(c, `return await tools.rec.pay({ amount: ${amount}, to: ${JSON.stringify(to)} })`)
}

const paidTo = (to: string) => rt.recorded().filter((r) => r.tool === 'pay' && r.args['to'] === to)

/** The audit decisions of `rec.pay` written since `from` records. */
function payDecisions(from: number) {
  return readAudit(auditFile)
    .slice(from)
    .filter((r) => r.type === 'call.decision' && r.tool === 'rec.pay')
}

describe('approval through elicitation with the real engine', () => {
  it('runs a small payment without asking', async () => {
    const { client: c, asked } = await client(async () => ({
      action: 'accept',
      content: { approve: true },
    }))
    const out = await pay(c, 10, 'small')
    expect(out).toMatchObject({ ok: true, result: { paid: 10 } })
    expect(asked).toEqual([])
    expect(paidTo('small')).toHaveLength(1)
  })

  it('asks the human with tool, arguments and rule, and runs the call on accept', async () => {
    const before = readAudit(auditFile).length
    const { client: c, asked } = await client(async () => ({
      action: 'accept',
      content: { approve: true },
    }))
    const out = await pay(c, 5000, 'accepted')
    expect(out).toMatchObject({ ok: true, result: { paid: 5000 } })
    expect(out.calls).toEqual([
      expect.objectContaining({ tool: 'rec.pay', ok: true, decision: 'approve' }),
    ])
    expect(asked).toEqual([
      'Allow the call rec.pay?\nArguments: {"amount":5000,"to":"accepted"}\n' +
        'Policy: rule "big-payments-need-a-human" asks a human to approve this call: payments over 1000 need a human',
    ])
    expect(paidTo('accepted')).toHaveLength(1)
    expect(payDecisions(before)).toEqual([
      expect.objectContaining({ decision: 'approved', ruleId: 'big-payments-need-a-human' }),
    ])
  })

  it('refuses with APPROVAL_DENIED on decline, cancel and approve=false, and never calls the upstream', async () => {
    const replies: ElicitResult[] = [
      { action: 'decline' },
      { action: 'cancel' },
      { action: 'accept', content: { approve: false } },
    ]
    for (const [i, reply] of replies.entries()) {
      const before = readAudit(auditFile).length
      const { client: c, asked } = await client(async () => reply)
      const out = await pay(c, 5000, `declined-${i}`)
      expect(asked).toHaveLength(1)
      expect(out.ok).toBe(false)
      expect(out.error).toMatchObject({
        code: 'APPROVAL_DENIED',
        message: expect.stringContaining(
          'rec.pay was not run: the human approver declined it (rule big-payments-need-a-human)',
        ),
      })
      expect(out.calls).toEqual([
        expect.objectContaining({ tool: 'rec.pay', ok: false, code: 'APPROVAL_DENIED' }),
      ])
      expect(paidTo(`declined-${i}`)).toEqual([])
      expect(payDecisions(before)).toEqual([
        expect.objectContaining({
          decision: 'approve',
          status: 'decline',
          code: 'APPROVAL_DENIED',
        }),
      ])
    }
  })

  it('refuses with APPROVAL_DENIED when nobody answers within approvalTimeoutMs', async () => {
    const before = readAudit(auditFile).length
    const { client: c, asked } = await client(() => new Promise<ElicitResult>(() => {}))
    const out = await pay(c, 5000, 'never')
    expect(asked).toHaveLength(1)
    expect(out.error).toMatchObject({
      code: 'APPROVAL_DENIED',
      message: expect.stringContaining(
        'rec.pay was not run: no human answered within gateway.approvalTimeoutMs (300 ms) (rule big-payments-need-a-human)',
      ),
    })
    expect(paidTo('never')).toEqual([])
    expect(payDecisions(before)).toEqual([
      expect.objectContaining({ status: 'timeout', code: 'APPROVAL_DENIED' }),
    ])
  })

  it('refuses clearly when the client cannot be asked (no elicitation capability)', async () => {
    const before = readAudit(auditFile).length
    const { client: c } = await client()
    const out = await pay(c, 5000, 'unsupported')
    expect(out.error).toMatchObject({
      code: 'APPROVAL_DENIED',
      message: expect.stringContaining(
        'rec.pay was not run: it needs human approval and this client cannot be asked (no elicitation support) (rule big-payments-need-a-human)',
      ),
    })
    expect(paidTo('unsupported')).toEqual([])
    expect(payDecisions(before)).toEqual([
      expect.objectContaining({ status: 'unsupported', code: 'APPROVAL_DENIED' }),
    ])
  })

  it('asks once per call: accepting one payment does not approve the next', async () => {
    let n = 0
    const { client: c, asked } = await client(async () =>
      n++ === 0 ? { action: 'accept', content: { approve: true } } : { action: 'decline' },
    )
    const out = await execute(
      c,
      `const a = await tools.rec.pay({ amount: 2000, to: 'twice-1' })
       let b; try { await tools.rec.pay({ amount: 2000, to: 'twice-2' }) } catch (e) { b = e.code }
       return { a, b }`,
    )
    expect(asked).toHaveLength(2)
    expect(out).toMatchObject({ ok: true, result: { a: { paid: 2000 }, b: 'APPROVAL_DENIED' } })
    expect(paidTo('twice-1')).toHaveLength(1)
    expect(paidTo('twice-2')).toEqual([])
  })
})
