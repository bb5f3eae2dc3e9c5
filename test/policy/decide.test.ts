/**
 * The decision of one call: deny by default, deny wins, approve over allow, fail closed, and the
 * conversion of JSON numbers into CEL ints and doubles.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { MAX_VALUE_DEPTH, allowAllPolicy, type PolicySet } from '../../src/policy/index.js'
import { call, policyFrom, principal, tempDir, tool } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const rules = (...list: Array<[id: string, effect: string, when: string]>): string =>
  `rules:\n${list.map(([id, effect, when]) => `  - id: ${id}\n    effect: ${effect}\n    when: ${JSON.stringify(when)}\n`).join('')}`

const mail = tool('mail', 'send_email')
const pay = tool('payments', 'pay')

describe('PolicySet.decide', () => {
  const set = policyFrom(
    tmp,
    rules(
      ['mail', 'allow', 'tool.server == "mail"'],
      ['no-external-mail', 'deny', 'tool.name == "send_email" && !args.to.endsWith("@corp.com")'],
      ['pay', 'allow', 'tool.server == "payments"'],
      ['big-pay', 'approve', 'tool.server == "payments" && args.amount > 1000'],
    ),
  )

  it('denies by default when no rule matches', () => {
    expect(set.decide(call(tool('other', 'x')))).toEqual({
      effect: 'deny',
      ruleId: 'default-deny',
      reason: 'denied: no rule allows this call (deny by default)',
      diagnostics: [],
    })
  })

  it('allows when an allow rule matches and no deny rule does', () => {
    expect(set.decide(call(mail, { to: 'bob@corp.com' }))).toMatchObject({
      effect: 'allow',
      ruleId: 'mail',
      reason: 'allowed by rule "mail"',
    })
  })

  it('lets a deny rule win over a matching allow rule', () => {
    expect(set.decide(call(mail, { to: 'x@evil.com' }))).toMatchObject({
      effect: 'deny',
      ruleId: 'no-external-mail',
      reason: 'denied by rule "no-external-mail"',
    })
  })

  it('lets approve win over allow when both match', () => {
    expect(set.decide(call(pay, { amount: 1500 }))).toMatchObject({
      effect: 'approve',
      ruleId: 'big-pay',
      reason: 'rule "big-pay" asks a human to approve this call',
    })
    expect(set.decide(call(pay, { amount: 500 }))).toMatchObject({ effect: 'allow', ruleId: 'pay' })
  })

  it('lets deny win over approve', () => {
    const s = policyFrom(tmp, rules(['a', 'approve', 'true'], ['d', 'deny', 'tool.name == "x"']))
    expect(s.decide(call(tool('s', 'x')))).toMatchObject({ effect: 'deny', ruleId: 'd' })
    expect(s.decide(call(tool('s', 'y')))).toMatchObject({ effect: 'approve', ruleId: 'a' })
  })

  it('decides with the first matching rule of each effect, in file order', () => {
    const s = policyFrom(tmp, rules(['first', 'allow', 'true'], ['second', 'allow', 'true']))
    expect(s.decide(call(mail)).ruleId).toBe('first')
  })

  it('adds the description to deny and approve reasons', () => {
    const s = policyFrom(
      tmp,
      'rules:\n  - id: d\n    effect: deny\n    description: no env dumps\n    when: tool.name == "get-env"\n',
    )
    expect(s.decide(call(tool('e', 'get-env'))).reason).toBe('denied by rule "d": no env dumps')
  })

  it('sees principal, tool, execution and now', () => {
    const s = policyFrom(
      tmp,
      rules([
        'all',
        'allow',
        'principal.sub == "alice" && principal.iss == "local" && principal.tenant == "acme" && "x:y" in principal.scopes && ' +
          'principal.claims.level >= 3 && tool.hash == "sha256:test" && tool.annotations.readOnlyHint == true && ' +
          'execution.id == "exec-1" && execution.callCount < 5 && now.getFullYear() == 2030',
      ]),
    )
    const input = {
      ...call(tool('s', 'n', { readOnlyHint: true })),
      principal: principal({ tenant: 'acme', scopes: ['x:y'], claims: { level: 3 } }),
      execution: { id: 'exec-1', callCount: 4 },
      now: new Date('2030-06-01T00:00:00Z'),
    }
    expect(s.decide(input).effect).toBe('allow')
    expect(s.decide({ ...input, execution: { id: 'exec-1', callCount: 5 } }).effect).toBe('deny')
  })

  it('leaves an absent tenant absent: has() is false, comparing it is an evaluation error', () => {
    const s = policyFrom(
      tmp,
      rules(
        ['no-tenant', 'allow', '!has(principal.tenant)'],
        ['acme', 'deny', 'principal.tenant != "acme"'],
      ),
    )
    const d = s.decide(call(mail))
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'acme' })
    expect(d.reason).toContain('evaluation error (no_such_key')
    expect(s.decide({ ...call(mail), principal: principal({ tenant: 'acme' }) })).toMatchObject({
      effect: 'deny',
      ruleId: 'default-deny',
    })
  })

  it('uses the current time when now is not given', () => {
    const s = policyFrom(tmp, rules(['recent', 'allow', 'now > timestamp("2020-01-01T00:00:00Z")']))
    expect(s.decide(call(mail)).effect).toBe('allow')
  })
})

describe('PolicySet.decide fails closed (AUTHZ-11)', () => {
  const failing: Array<[string, string]> = [
    ['a missing field', 'args.missing == "x"'],
    ['a type error at run time', 'args.text > 1'],
    ['division by zero', 'args.n / 0 == 1'],
    ['integer overflow', 'args.n + 9223372036854775807 > 0'],
    ['a missing annotation', 'tool.annotations.destructiveHint == true'],
    ['a string method on a list', 'args.list.startsWith("a")'],
  ]
  const input = call(mail, { text: 'abc', n: 1, list: ['a'] })

  for (const [what, when] of failing) {
    it(`denies with rule id and "evaluation error" when a deny rule hits ${what}`, () => {
      const s = policyFrom(tmp, rules(['everything', 'allow', 'true'], ['broken', 'deny', when]))
      const d = s.decide(input)
      expect(d.effect).toBe('deny')
      expect(d.ruleId).toBe('broken')
      expect(d.reason).toMatch(
        /^denied by rule "broken": evaluation error \([a-z_]+ at 1:\d+\); a deny rule that cannot be evaluated denies$/,
      )
      expect(d.diagnostics).toHaveLength(1)
    })

    it(`does not match an allow rule that hits ${what}, and says so`, () => {
      const s = policyFrom(tmp, rules(['broken', 'allow', when]))
      const d = s.decide(input)
      expect(d).toMatchObject({ effect: 'deny', ruleId: 'default-deny' })
      expect(d.reason).toMatch(
        /^denied: no rule allows this call \(deny by default\); rule "broken": evaluation error [a-z_]+ at 1:\d+$/,
      )
    })
  }

  it('uses a later allow rule when an earlier one fails', () => {
    const s = policyFrom(
      tmp,
      rules(['broken', 'allow', 'args.missing == 1'], ['ok', 'allow', 'true']),
    )
    const d = s.decide(call(mail))
    expect(d).toMatchObject({ effect: 'allow', ruleId: 'ok' })
    expect(d.diagnostics).toEqual(['rule "broken": evaluation error no_such_key at 1:6'])
  })

  it('denies when an approve rule fails while an allow rule matches (no silent skip of the human)', () => {
    const s = policyFrom(
      tmp,
      rules(['pay', 'allow', 'true'], ['big', 'approve', 'args.amount > 1000']),
    )
    const d = s.decide(call(pay, { amount: '5000' }))
    expect(d).toMatchObject({ effect: 'deny', ruleId: 'big' })
    expect(d.reason).toContain('approval rule "big" could not be evaluated (evaluation error')
  })

  it('still asks a human when one approve rule fails and another matches', () => {
    const s = policyFrom(
      tmp,
      rules(['broken', 'approve', 'args.missing > 1'], ['human', 'approve', 'true']),
    )
    expect(s.decide(call(pay))).toMatchObject({ effect: 'approve', ruleId: 'human' })
  })

  it('denies a call without args when a deny rule needs them', () => {
    const s = policyFrom(tmp, rules(['all', 'allow', 'true'], ['check', 'deny', 'args.to != "x"']))
    const { args: _args, ...input } = call(mail)
    expect(s.decide(input)).toMatchObject({ effect: 'deny', ruleId: 'check' })
  })

  it('restores Error.stackTraceLimit after a failed evaluation', () => {
    const before = Error.stackTraceLimit
    const s = policyFrom(tmp, rules(['broken', 'deny', 'args.missing == 1']))
    expect(s.decide(call(mail)).effect).toBe('deny')
    expect(s.canList({ principal: principal(), tool: mail })).toBe(false)
    expect(Error.stackTraceLimit).toBe(before)
  })

  it('keeps argument values out of reasons and diagnostics', () => {
    const s = policyFrom(
      tmp,
      rules(['all', 'allow', 'true'], ['conv', 'deny', 'int(args.secret) > 1']),
    )
    const d = s.decide(call(mail, { secret: 'hunter2-token' }))
    expect(d.effect).toBe('deny')
    expect(JSON.stringify(d)).not.toContain('hunter2')
  })
})

describe('PolicySet.decide input conversion', () => {
  const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : { x: nested(depth - 1) })

  it(`accepts arguments nested ${MAX_VALUE_DEPTH} levels deep and denies ${MAX_VALUE_DEPTH + 1}`, () => {
    const s = policyFrom(tmp, rules(['all', 'allow', 'true']))
    // args itself is level 0; each object below adds one level.
    expect(s.decide(call(mail, { v: nested(MAX_VALUE_DEPTH - 1) })).effect).toBe('allow')
    expect(s.decide(call(mail, { v: nested(MAX_VALUE_DEPTH) }))).toEqual({
      effect: 'deny',
      ruleId: 'invalid-input',
      reason: `denied: value nests deeper than ${MAX_VALUE_DEPTH} levels`,
      diagnostics: [],
    })
  })

  it('denies values JSON cannot carry instead of guessing', () => {
    const s = policyFrom(tmp, rules(['all', 'allow', 'true']))
    expect(s.decide(call(mail, { f: () => 1 })).ruleId).toBe('invalid-input')
    expect(s.decide(call(mail, { d: new Date() })).ruleId).toBe('invalid-input')
    expect(s.decide(call(mail, { u: undefined })).effect).toBe('allow')
  })

  it('treats __proto__ and constructor as plain keys', () => {
    const s = policyFrom(
      tmp,
      rules(['proto', 'allow', 'has(args.__proto__) && !has(args.constructor)']),
    )
    expect(
      s.decide(
        call(mail, JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>),
      ).effect,
    ).toBe('allow')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('denies a non-integer execution.callCount', () => {
    const s = policyFrom(tmp, rules(['all', 'allow', 'true']))
    expect(s.decide({ ...call(mail), execution: { id: 'e', callCount: 1.5 } }).ruleId).toBe(
      'invalid-input',
    )
  })
})

describe('numbers: JSON numbers as CEL int and double', () => {
  const cases: Array<[when: string, value: unknown, expected: boolean]> = [
    ['args.amount > 1000', 1500, true],
    ['args.amount > 1000', 1500.5, true],
    ['args.amount > 1000', 999.5, false],
    ['args.amount > 1000', 1000, false],
    ['args.amount > 1.5', 2, true],
    ['args.amount > 1.5', 1.25, false],
    ['args.amount == 1500', 1500, true],
    ['args.amount == 1500.0', 1500, true],
    ['args.amount + 1 == 1501', 1500, true],
    ['double(args.amount) * 1.5 == 2250.0', 1500, true],
    ['double(args.amount) * 2.0 == 3001.0', 1500.5, true],
    ['args.amount < 0', -1, true],
    ['args.amount > 9007199254740991', 2 ** 53 + 2, true],
    ['args.amount > 1000', 1e300, true],
    ['args.amount == 0', -0, true],
    ['type(args.amount) == int', 42, true],
    ['type(args.amount) == double', 42.5, true],
    ['type(args.amount) == double', 2 ** 60, true],
  ]
  for (const [when, value, expected] of cases) {
    it(`${when} is ${expected} for ${String(value)}`, () => {
      const s = policyFrom(tmp, rules(['n', 'allow', when]))
      expect(s.decide(call(pay, { amount: value })).effect).toBe(expected ? 'allow' : 'deny')
    })
  }

  it('converts numbers inside lists, maps and claims', () => {
    const s = policyFrom(
      tmp,
      rules([
        'n',
        'allow',
        'args.items.all(i, i.qty > 0 && i.qty + 1 > 1) && principal.claims.exp > 1700000000',
      ]),
    )
    const input = {
      ...call(pay, { items: [{ qty: 1 }, { qty: 2 }] }),
      principal: principal({ claims: { exp: 1800000000 } }),
    }
    expect(s.decide(input).effect).toBe('allow')
  })

  it('does not compare a number sent as a string with a number (an error, so no match)', () => {
    const s = policyFrom(tmp, rules(['n', 'allow', 'args.amount > 1000']))
    expect(s.decide(call(pay, { amount: '1500' })).reason).toContain(
      'evaluation error no_such_overload',
    )
  })
})

describe('allowAllPolicy', () => {
  const all: PolicySet = allowAllPolicy()

  it('allows and lists every tool with rule id no-policies, and has no budgets', () => {
    expect(all.decide(call(tool('any', 'thing'), { x: 1 }))).toMatchObject({
      effect: 'allow',
      ruleId: 'no-policies',
    })
    expect(all.canList({ principal: principal(), tool: tool('any', 'thing') })).toBe(true)
    expect(all.budgetsFor(call(mail))).toEqual([])
    expect(all.ruleIds).toEqual(['no-policies'])
    expect(all.files).toEqual([])
    expect(all.describe()).toEqual({ kind: 'allow-all', files: [], rules: [], budgets: [] })
  })
})
