/**
 * Hostile authorisation tests at the dispatcher (AUTHZ-01..03, 11, 14, 15): whatever path the
 * model takes, a call the policy does not allow never reaches the upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'

const POLICY = `
rules:
  - id: read-only
    effect: allow
    when: tool.annotations.readOnlyHint == true
  - id: mail-inside
    effect: allow
    when: tool.name == "send_email"
  - id: mail-outside-denied
    effect: deny
    when: tool.name == "send_email" && !args.to.endsWith("@example.com")
  - id: big-payments-need-a-human
    effect: approve
    when: tool.name == "pay" && args.amount > 1000
  - id: small-payments
    effect: allow
    when: tool.name == "pay" && args.amount <= 1000
  - id: broken-deny
    effect: deny
    when: tool.name == "read_item" && args.id.size() / 0 > 1
budgets:
  - id: two-mails
    when: tool.name == "send_email"
    maxCallsPerExecution: 2
`

describe('authorisation at the dispatcher', () => {
  let rt: TestRuntime
  beforeAll(async () => {
    rt = await testRuntime({ recording: true, policy: POLICY })
  })
  afterAll(async () => rt?.close())

  const run = (code: string, opts = {}) => rt.engine.execute(rt.principal(), code, opts)
  const recordedTools = () => rt.recorded().map((r) => r.tool)

  it('AUTHZ-15 lists only tools an allow rule could match', () => {
    const names = rt.engine
      .listTools(rt.principal())
      .map((t) => t.name)
      .sort()
    expect(names).not.toContain('delete_item')
    expect(names).toEqual(
      expect.arrayContaining(['get-sum', 'send_email', 'pay', 'fail', 'big', 'echo_env']),
    )
  })

  it('AUTHZ-01 a filtered tool is refused by its identifier and by brackets, and never reaches the upstream', async () => {
    for (const code of [
      `return await tools.rec.delete_item({ id: '1' })`,
      `return await tools.rec['delete_item']({ id: '1' })`,
      `return await tools['rec']['delete_item']({ id: '1' })`,
    ]) {
      const r = await run(code)
      expect(r.ok).toBe(false)
      // Not in this principal's manifest: the dispatcher refuses it before its schema is read.
      expect(r.error).toMatchObject({
        code: 'TOOL_DENIED',
        message:
          'tools.rec.delete_item exists but is not available to this caller (policy: no rule allows it)',
      })
      expect(r.calls).toEqual([
        expect.objectContaining({ tool: 'rec.delete_item', decision: 'deny', code: 'TOOL_DENIED' }),
      ])
    }
    expect(recordedTools()).not.toContain('delete_item')
  })

  it('AUTHZ-01 the dispatcher itself denies a filtered tool reached without the bindings (direct path)', async () => {
    const tool = rt.engine.catalog.tools().find((t) => t.name === 'delete_item')!
    const r = await rt.engine.callDirect(rt.principal(), tool, { id: '1' })
    expect(r.isError).toBe(true)
    expect(JSON.stringify(r.content)).toContain('TOOL_DENIED')
    expect(recordedTools()).not.toContain('delete_item')
  })

  it('AUTHZ-02 Unicode look-alikes, case variants and stray spaces match no tool', async () => {
    for (const name of [
      'dеlete_item' /* Cyrillic е */,
      'Delete_item',
      'DELETE_ITEM',
      'delete_item ',
      'delete_item\u0000',
      'get‐sum' /* U+2010 */,
    ]) {
      const r = await run(`return await tools.rec[${JSON.stringify(name)}]({ id: '1' })`)
      expect(r.ok, name).toBe(false)
      expect(r.error?.code, name).toBe('UNKNOWN_TOOL')
    }
    expect(recordedTools()).not.toContain('delete_item')
  })

  it('allows the sanitised and the original spelling of the same tool', async () => {
    const r = await run(
      `return [await tools.rec.get_sum({ a: 1, b: 2 }), await tools.rec['get-sum']({ a: 3, b: 4 })]`,
    )
    expect(r.result).toEqual([3, 7])
  })

  it('argument rules: an allowed recipient passes, another is denied before the upstream', async () => {
    const ok = await run(
      `return await tools.rec.send_email({ to: 'bob@example.com', subject: 'hi' })`,
    )
    expect(ok.ok).toBe(true)
    for (const to of ['eve@evil.com', 'x@evil.com,@example.com.evil', 'a@example.com.evil.com']) {
      const denied = await run(
        `return await tools.rec.send_email({ to: ${JSON.stringify(to)}, subject: 'hi' })`,
      )
      expect(denied.error?.code, to).toBe('TOOL_DENIED')
      expect(denied.error?.message).toContain('mail-outside-denied')
    }
    expect(
      rt
        .recorded()
        .filter((r) => r.tool === 'send_email')
        .map((r) => r.args.to),
    ).toEqual(['bob@example.com'])
  })

  it('deny precedence: a deny rule beats a matching allow rule', async () => {
    const r = await run(`return await tools.rec.send_email({ to: 'eve@evil.com', subject: 's' })`)
    expect(r.calls[0]).toMatchObject({ ok: false, decision: 'deny', code: 'TOOL_DENIED' })
  })

  it('AUTHZ-11 an evaluation error in a deny rule denies (fail closed)', async () => {
    const before = recordedTools().filter((t) => t === 'read_item').length
    const r = await run(`return await tools.rec.read_item({ id: 'abc' })`)
    expect(r.error?.code).toBe('TOOL_DENIED')
    expect(recordedTools().filter((t) => t === 'read_item').length).toBe(before)
  })

  it('budgets: the N-th call passes, the N+1-th is refused with BUDGET_EXCEEDED', async () => {
    const before = rt.recorded().filter((r) => r.tool === 'send_email').length
    const r = await run(`
      const out = []
      for (let i = 0; i < 3; i++) {
        try { await tools.rec.send_email({ to: 'b@example.com', subject: String(i) }); out.push('ok') }
        catch (e) { out.push(e.code) }
      }
      return out`)
    expect(r.result).toEqual(['ok', 'ok', 'BUDGET_EXCEEDED'])
    expect(rt.recorded().filter((r) => r.tool === 'send_email').length).toBe(before + 2)
  })

  it('approval: accepted calls run, declined and unanswerable ones are APPROVAL_DENIED', async () => {
    const code = `return await tools.rec.pay({ amount: 5000, to: 'acme' })`
    const accepted = await run(code, { approve: async () => 'accept' })
    expect(accepted.ok).toBe(true)
    expect(accepted.calls[0]?.decision).toBe('approve')
    for (const answer of ['decline', 'timeout', 'unsupported'] as const) {
      const r = await run(code, { approve: async () => answer })
      expect(r.error?.code).toBe('APPROVAL_DENIED')
    }
    const noHandler = await run(code)
    expect(noHandler.error?.message).toContain('cannot be asked')
    expect(rt.recorded().filter((r) => r.tool === 'pay')).toHaveLength(1)
    const small = await run(`return await tools.rec.pay({ amount: 10, to: 'acme' })`)
    expect(small.ok).toBe(true)
  })

  it('SBX-04 prototype-pollution keys in arguments are inert data and change no decision', async () => {
    const r = await run(
      `return await tools.rec.get_sum(JSON.parse('{"a":1,"b":2,"__proto__":{"readOnlyHint":false}}'))`,
    )
    expect(({} as Record<string, unknown>).readOnlyHint).toBeUndefined()
    expect(r.ok).toBe(true)
  })
})
