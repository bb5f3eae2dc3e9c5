/**
 * Hidden versus unknown at the dispatcher: a tool that exists but policy hides from the caller
 * answers TOOL_DENIED, naming the rule, before its schema is looked at; a name that matches no
 * tool answers UNKNOWN_TOOL, suggesting only tools the caller can see. Real engine, the
 * recording fixture, an audit log.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { renderPrometheus } from '../../src/telemetry/index.js'
import { readAudit } from '../e2e/helpers.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'

const POLICY = `
rules:
  - id: everything-on-rec
    effect: allow
    when: tool.server == "rec"
  - id: no-deletes
    effect: deny
    when: tool.name == "delete_item"
  - id: no-sums
    effect: deny
    when: tool.name == "get-sum"
`

let rt: TestRuntime
beforeAll(async () => {
  rt = await testRuntime({
    recording: true,
    policy: POLICY,
    config: { audit: { file: 'audit.jsonl' } },
  })
})
afterAll(async () => rt?.close())

const run = (code: string) => rt.engine.execute(rt.principal(), code)
const denied = (path: string, rule: string) =>
  `${path} exists but is not available to this caller (policy: rule "${rule}")`

describe('a tool policy hides from the caller', () => {
  it('is TOOL_DENIED naming the rule, audited, and the upstream is never called', async () => {
    const r = await run("return await tools.rec.delete_item({ id: '1' })")
    expect(r.error).toMatchObject({
      code: 'TOOL_DENIED',
      message: denied('tools.rec.delete_item', 'no-deletes'),
      line: 1,
    })
    expect(r.calls).toEqual([
      expect.objectContaining({
        tool: 'rec.delete_item',
        ok: false,
        decision: 'deny',
        code: 'TOOL_DENIED',
      }),
    ])
    const audit = readAudit(join(rt.dir, 'audit.jsonl')).filter((l) => l.tool === 'rec.delete_item')
    expect(audit).toEqual([
      expect.objectContaining({
        type: 'call.decision',
        decision: 'deny',
        ruleId: 'no-deletes',
        code: 'TOOL_DENIED',
      }),
    ])
    expect(rt.recorded().map((c) => c.tool)).not.toContain('delete_item')
  })

  it('is refused before its schema is read: wrong arguments are still TOOL_DENIED', async () => {
    const r = await run("return await tools.rec.delete_item('not an object')")
    expect(r.error).toMatchObject({
      code: 'TOOL_DENIED',
      message: denied('tools.rec.delete_item', 'no-deletes'),
    })
  })

  it('is refused by its sanitised identifier too (get_sum for get-sum)', async () => {
    for (const call of [
      'tools.rec.get_sum({ a: 1, b: 2 })',
      "tools.rec['get-sum']({ a: 1, b: 2 })",
    ]) {
      const r = await run(`return await ${call}`)
      expect(r.error, call).toMatchObject({
        code: 'TOOL_DENIED',
        message: denied('tools.rec.get_sum', 'no-sums'),
      })
    }
    expect(rt.recorded().map((c) => c.tool)).not.toContain('get-sum')
  })
})

describe('a name that matches no tool', () => {
  it('is UNKNOWN_TOOL and never suggests a hidden tool, however close', async () => {
    const r = await run("return await tools.rec.delete_itme({ id: '1' })")
    expect(r.error?.code).toBe('UNKNOWN_TOOL')
    expect(r.error?.message).toMatch(/^tools\.rec\.delete_itme does not exist; tools\.rec has: /)
    expect(r.error?.message).not.toMatch(/delete_item|get_sum|get-sum/)
  })

  it('suggests the visible tool of the same spelling', async () => {
    const r = await run("return await tools.rec.readItem({ id: '1' })")
    expect(r.error).toMatchObject({
      code: 'UNKNOWN_TOOL',
      message: 'tools.rec.readItem does not exist; did you mean tools.rec.read_item?',
    })
  })

  it('is counted under <unknown> in the metrics: the guest chooses no label', async () => {
    await run('return await tools.rec.made_up_1({})')
    await run('return await tools.nowhere.made_up_2({})')
    const text = renderPrometheus()
    expect(text).not.toMatch(/made_up_|nowhere/)
    expect(text).toContain(
      'sluice_tool_calls_total{server="rec",tool="<unknown>",outcome="UNKNOWN_TOOL"}',
    )
    expect(text).toContain(
      'sluice_tool_calls_total{server="<unknown>",tool="<unknown>",outcome="UNKNOWN_TOOL"}',
    )
  })

  it('is refused in the sandbox when it is longer than any tool name', async () => {
    const r = await run(`return await tools.rec['${'x'.repeat(257)}']({})`)
    expect(r.error).toMatchObject({
      code: 'UNKNOWN_TOOL',
      message: 'no tool has a name longer than 256 characters',
    })
    expect(r.calls).toEqual([])
  })

  it('is the exact name the guest wrote: a NUL does not cut it short', async () => {
    const r = await run('return await tools.rec["read_item\\u0000x"]({ id: "1" })')
    expect(r.error).toMatchObject({ code: 'UNKNOWN_TOOL' })
    expect(r.error?.message).toContain('does not exist')
    expect(rt.recorded().map((c) => c.tool)).not.toContain('read_item')
  })
})
