/**
 * Listing: which tools a principal sees, decided by the same rules without `args` and
 * `execution`. A rule that needs arguments never silently hides or denies everything.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { call, policyFrom, principal, tempDir, tool } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const rules = (...list: Array<[id: string, effect: string, when: string]>): string =>
  `rules:\n${list.map(([id, effect, when]) => `  - id: ${id}\n    effect: ${effect}\n    when: ${JSON.stringify(when)}\n`).join('')}`

const listing = (t: ReturnType<typeof tool>, scopes: string[] = []) => ({
  principal: principal({ scopes }),
  tool: t,
})

describe('PolicySet.canList', () => {
  it('lists a tool an allow rule matches without arguments', () => {
    const s = policyFrom(tmp, rules(['read', 'allow', 'tool.server == "memory"']))
    expect(s.canList(listing(tool('memory', 'read_graph')))).toBe(true)
    expect(s.canList(listing(tool('files', 'read_file')))).toBe(false)
  })

  it('lists a tool an approve rule matches', () => {
    const s = policyFrom(tmp, rules(['human', 'approve', 'tool.name == "delete"']))
    expect(s.canList(listing(tool('m', 'delete')))).toBe(true)
  })

  it('follows the principal: scopes decide what is listed', () => {
    const s = policyFrom(
      tmp,
      rules(['write', 'allow', 'tool.name == "write" && "w" in principal.scopes']),
    )
    expect(s.canList(listing(tool('m', 'write'), ['w']))).toBe(true)
    expect(s.canList(listing(tool('m', 'write'), []))).toBe(false)
  })

  it('lists a tool whose allow rule needs args ("could match")', () => {
    const s = policyFrom(
      tmp,
      rules(['small', 'allow', 'tool.server == "payments" && args.amount <= 1000']),
    )
    expect(s.canList(listing(tool('payments', 'pay')))).toBe(true)
    // The part without args still decides: another server's tools are not listed.
    expect(s.canList(listing(tool('memory', 'read_graph')))).toBe(false)
  })

  it('does not hide a tool for a deny rule that needs args (decided per call)', () => {
    const s = policyFrom(
      tmp,
      rules(
        ['mail', 'allow', 'tool.server == "mail"'],
        ['external', 'deny', '!args.to.endsWith("@corp.com")'],
      ),
    )
    expect(s.canList(listing(tool('mail', 'send_email')))).toBe(true)
    // ...while the call itself is decided with its arguments.
    expect(s.decide(call(tool('mail', 'send_email'), { to: 'x@evil.com' })).effect).toBe('deny')
  })

  it('hides a tool a deny rule matches without args', () => {
    const s = policyFrom(
      tmp,
      rules(['all', 'allow', 'true'], ['no-env', 'deny', 'tool.name == "get-env"']),
    )
    expect(s.canList(listing(tool('everything', 'get-env')))).toBe(false)
    expect(s.canList(listing(tool('everything', 'echo')))).toBe(true)
  })

  it('hides a tool a deny rule matches whatever the args are', () => {
    const s = policyFrom(
      tmp,
      rules(['all', 'allow', 'true'], ['d', 'deny', 'tool.name == "x" || args.y == 1']),
    )
    expect(s.canList(listing(tool('s', 'x')))).toBe(false)
    expect(s.canList(listing(tool('s', 'z')))).toBe(true)
  })

  it('treats execution like args: per call, never a reason to hide', () => {
    const s = policyFrom(
      tmp,
      rules(['all', 'allow', 'execution.callCount < 3'], ['d', 'deny', 'execution.callCount > 10']),
    )
    expect(s.canList({ ...listing(tool('s', 'x')), execution: { id: 'e', callCount: 50 } })).toBe(
      true,
    )
  })

  it('hides a tool when a deny rule without args fails to evaluate (fail closed)', () => {
    const s = policyFrom(
      tmp,
      rules(['all', 'allow', 'true'], ['d', 'deny', 'tool.annotations.destructiveHint == true']),
    )
    expect(s.canList(listing(tool('s', 'no-annotations')))).toBe(false)
    expect(s.canList(listing(tool('s', 'safe', { destructiveHint: false })))).toBe(true)
  })

  it('does not list a tool whose only allow rule fails to evaluate without args', () => {
    const s = policyFrom(tmp, rules(['ro', 'allow', 'tool.annotations.readOnlyHint == true']))
    expect(s.canList(listing(tool('s', 'x')))).toBe(false)
    expect(s.canList(listing(tool('s', 'x', { readOnlyHint: true })))).toBe(true)
  })

  it('hides a tool whose approve rule fails regardless of args, as every call to it is denied', () => {
    const s = policyFrom(
      tmp,
      rules(['all', 'allow', 'true'], ['human', 'approve', 'tool.annotations.risky == true']),
    )
    expect(s.canList(listing(tool('s', 'x')))).toBe(false)
    expect(s.decide(call(tool('s', 'x'))).effect).toBe('deny')
    expect(s.canList(listing(tool('s', 'x', { risky: false })))).toBe(true)
  })

  it('lists nothing when no rule allows anything', () => {
    const s = policyFrom(tmp, 'rules: []\n')
    expect(s.canList(listing(tool('s', 'x')))).toBe(false)
  })
})

describe('PolicySet.listVerdict', () => {
  it('names the deny rule that hides a tool, and no rule when nothing allows it', () => {
    const s = policyFrom(
      tmp,
      rules(
        ['reads', 'allow', 'tool.server == "m"'],
        ['no-drop', 'deny', 'tool.name == "drop"'],
        ['broken-approval', 'approve', 'tool.server == "p" && principal.claims.x.y == 1'],
      ),
    )
    expect(s.listVerdict(listing(tool('m', 'read')))).toEqual({ listed: true })
    expect(s.listVerdict(listing(tool('m', 'drop')))).toEqual({ listed: false, ruleId: 'no-drop' })
    expect(s.listVerdict(listing(tool('other', 'read')))).toEqual({ listed: false })
    // An approve rule that fails without args hides the tool, and is named.
    expect(s.listVerdict(listing(tool('p', 'pay')))).toEqual({
      listed: false,
      ruleId: 'broken-approval',
    })
    for (const t of [tool('m', 'read'), tool('m', 'drop'), tool('other', 'read')])
      expect(s.canList(listing(t))).toBe(s.listVerdict(listing(t)).listed)
  })
})
