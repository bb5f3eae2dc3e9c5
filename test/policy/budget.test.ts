/**
 * Budgets: which budgets a call matches (fail closed on evaluation errors) and the per-execution
 * tracker that counts them, tested at N and N + 1.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { BudgetTracker } from '../../src/policy/index.js'
import { call, policyFrom, tempDir, tool } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const set = policyFrom(
  tmp,
  `rules:
  - id: all
    effect: allow
    when: "true"
budgets:
  - id: mail-rate
    when: tool.server == "mail"
    maxCallsPerExecution: 3
  - id: big-mail
    when: tool.server == "mail" && args.size > 1000
    maxCallsPerExecution: 1
  - id: broken
    when: tool.server == "files" && args.missing > 1
    maxCallsPerExecution: 2
`,
)
const mail = tool('mail', 'send_email')

describe('PolicySet.budgetsFor', () => {
  it('returns the budgets whose when matches, with their limits', () => {
    expect(set.budgetsFor(call(mail, { size: 10 }))).toEqual([
      { id: 'mail-rate', maxCallsPerExecution: 3 },
    ])
    expect(set.budgetsFor(call(mail, { size: 5000 }))).toEqual([
      { id: 'mail-rate', maxCallsPerExecution: 3 },
      { id: 'big-mail', maxCallsPerExecution: 1 },
    ])
    expect(set.budgetsFor(call(tool('other', 'x')))).toEqual([])
  })

  it('counts a budget whose when fails to evaluate as matched (fail closed)', () => {
    expect(set.budgetsFor(call(tool('files', 'write')))).toEqual([
      { id: 'broken', maxCallsPerExecution: 2 },
    ])
  })

  it('counts every budget when the input cannot be converted', () => {
    expect(set.budgetsFor(call(mail, { f: () => 1 })).map((b) => b.id)).toEqual([
      'mail-rate',
      'big-mail',
      'broken',
    ])
  })
})

describe('BudgetTracker', () => {
  it('allows maxCallsPerExecution calls and refuses call N + 1, naming the budget', () => {
    const tracker = new BudgetTracker()
    const matched = set.budgetsFor(call(mail, { size: 1 }))
    for (let i = 0; i < 3; i++) expect(tracker.tryConsume(matched)).toEqual({ ok: true })
    expect(tracker.used('mail-rate')).toBe(3)
    expect(tracker.tryConsume(matched)).toEqual({
      ok: false,
      budgetId: 'mail-rate',
      maxCallsPerExecution: 3,
    })
    expect(tracker.used('mail-rate')).toBe(3)
  })

  it('consumes all matched budgets or none', () => {
    const tracker = new BudgetTracker()
    const big = set.budgetsFor(call(mail, { size: 5000 }))
    expect(tracker.tryConsume(big)).toEqual({ ok: true })
    expect(tracker.tryConsume(big)).toEqual({
      ok: false,
      budgetId: 'big-mail',
      maxCallsPerExecution: 1,
    })
    // The refused call did not consume mail-rate: two more small mails still fit.
    expect(tracker.used('mail-rate')).toBe(1)
    const small = set.budgetsFor(call(mail, { size: 1 }))
    expect(tracker.tryConsume(small)).toEqual({ ok: true })
    expect(tracker.tryConsume(small)).toEqual({ ok: true })
    expect(tracker.tryConsume(small)).toMatchObject({ ok: false, budgetId: 'mail-rate' })
  })

  it('counts a call without matched budgets as free', () => {
    const tracker = new BudgetTracker()
    for (let i = 0; i < 10; i++) expect(tracker.tryConsume([])).toEqual({ ok: true })
  })

  it('refuses every call of a budget of 0', () => {
    expect(new BudgetTracker().tryConsume([{ id: 'none', maxCallsPerExecution: 0 }])).toEqual({
      ok: false,
      budgetId: 'none',
      maxCallsPerExecution: 0,
    })
  })

  it('keeps executions apart: a new tracker starts from zero', () => {
    const first = new BudgetTracker()
    const matched = [{ id: 'one', maxCallsPerExecution: 1 }]
    expect(first.tryConsume(matched).ok).toBe(true)
    expect(first.tryConsume(matched).ok).toBe(false)
    expect(new BudgetTracker().tryConsume(matched).ok).toBe(true)
  })
})
