/**
 * Data labels in policy: `tool.labels` and `execution.labels` type-check and decide, a denial by
 * a label rule names the rule and the labels that matched (other denials keep their wording),
 * listing never hides an egress tool for a rule about the execution's labels, a label string
 * the config does not declare stops the load with a did-you-mean, and case files carry labels.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { labelUse, loadPolicies, runPolicyCases } from '../../src/policy/index.js'
import { compileWhen } from '../../src/policy/index.js'
import { call, failure, policyFrom, principal, tempDir, tool } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const NO_EGRESS = `rules:
  - id: everything
    effect: allow
    when: "true"
  - id: no-egress-after-confidential
    effect: deny
    when: '"egress" in tool.labels && "confidential" in execution.labels'
`

const labelled = (labels: string[]) => ({ ...tool('mail', 'send_email'), labels })
const withLabels = (labels: string[]) => ({ execution: { id: 'e', callCount: 1, labels } })

describe('tool.labels and execution.labels', () => {
  it('type-check as lists of strings', () => {
    expect(compileWhen('"x" in tool.labels && size(execution.labels) > 0').ok).toBe(true)
    const wrong = compileWhen('tool.labels == "x"')
    expect(wrong.ok).toBe(false)
  })

  it('deny egress after confidential, naming the rule and the labels that matched', () => {
    const set = policyFrom(tmp, NO_EGRESS)
    const d = set.decide(
      call(labelled(['egress', 'external']), {}, withLabels(['pii', 'confidential', 'finance'])),
    )
    expect(d).toMatchObject({
      effect: 'deny',
      ruleId: 'no-egress-after-confidential',
      reason:
        'rule no-egress-after-confidential (tool labels: egress; execution labels: confidential)',
    })
  })

  it('allows egress before anything confidential, and confidential reads at any time', () => {
    const set = policyFrom(tmp, NO_EGRESS)
    expect(set.decide(call(labelled(['egress']), {}, withLabels(['pii']))).effect).toBe('allow')
    expect(set.decide(call(labelled(['egress']), {}, withLabels([]))).effect).toBe('allow')
    expect(
      set.decide(call(labelled(['confidential']), {}, withLabels(['confidential']))).effect,
    ).toBe('allow')
  })

  it('sorts and deduplicates tool.labels; keeps execution.labels in order', () => {
    const set = policyFrom(
      tmp,
      `rules:
  - id: exact
    effect: allow
    when: 'tool.labels == ["a", "b"] && execution.labels == ["z", "y"]'
`,
    )
    expect(
      set.decide(call(labelled(['b', 'a', 'b']), {}, withLabels(['z', 'y', 'z']))).effect,
    ).toBe('allow')
    expect(set.decide(call(labelled(['a', 'b']), {}, withLabels(['y', 'z']))).effect).toBe('deny')
  })

  it('defaults both lists to empty', () => {
    const set = policyFrom(
      tmp,
      `rules:\n  - id: none\n    effect: allow\n    when: 'size(tool.labels) == 0 && size(execution.labels) == 0'\n`,
    )
    expect(set.decide(call(tool('mail', 'send_email'))).effect).toBe('allow')
  })

  it('shows every label of a list the rule reads without naming one, and "none" when empty', () => {
    const set = policyFrom(
      tmp,
      `rules:
  - id: all
    effect: allow
    when: "true"
  - id: any-label-then-egress
    effect: deny
    description: nothing labelled may leave
    when: '"egress" in tool.labels && size(execution.labels) > 0 && !("cleared" in execution.labels)'
`,
    )
    const d = set.decide(call(labelled(['egress']), {}, withLabels(['pii', 'finance'])))
    expect(d.reason).toBe(
      'rule any-label-then-egress (tool labels: egress; execution labels: none): nothing labelled may leave',
    )
  })

  it('keeps the old wording for a deny rule that does not read labels', () => {
    const set = policyFrom(
      tmp,
      `rules:
  - id: all
    effect: allow
    when: "true"
  - id: no-mail
    effect: deny
    description: mail is off
    when: tool.server == "mail"
`,
    )
    expect(set.decide(call(labelled(['egress']), {}, withLabels(['confidential']))).reason).toBe(
      'denied by rule "no-mail": mail is off',
    )
  })

  it('lists egress tools although a deny rule needs the execution labels (listing has none)', () => {
    const set = policyFrom(tmp, NO_EGRESS)
    expect(set.canList({ principal: principal(), tool: labelled(['egress']) })).toBe(true)
    expect(set.listVerdict({ principal: principal(), tool: labelled(['egress']) })).toEqual({
      listed: true,
    })
  })

  it('hides a tool by its own labels at listing time (no execution needed)', () => {
    const set = policyFrom(
      tmp,
      `rules:
  - id: all
    effect: allow
    when: "true"
  - id: no-restricted
    effect: deny
    when: '"restricted" in tool.labels'
`,
    )
    expect(set.listVerdict({ principal: principal(), tool: labelled(['restricted']) })).toEqual({
      listed: false,
      ruleId: 'no-restricted',
    })
    expect(set.canList({ principal: principal(), tool: labelled(['egress']) })).toBe(true)
  })
})

describe('labelUse', () => {
  const use = (when: string) => {
    const compiled = compileWhen(when)
    if (!compiled.ok) throw new Error(compiled.message)
    const u = labelUse(compiled.program.ast)
    return { lists: [...u.lists].sort(), labels: u.literals.map((l) => `${l.list}:${l.label}`) }
  }

  it('finds the label strings of every recognised form', () => {
    expect(use('"a" in tool.labels && "b" in execution.labels')).toEqual({
      lists: ['execution', 'tool'],
      labels: ['tool:a', 'execution:b'],
    })
    expect(use('tool.labels.exists(l, l == "a" || l in ["b", "c"])').labels).toEqual([
      'tool:a',
      'tool:b',
      'tool:c',
    ])
    expect(use('execution.labels == ["a"]').labels).toEqual(['execution:a'])
    expect(use('["a", "b"].exists(x, x in execution.labels)').labels).toEqual([
      'execution:a',
      'execution:b',
    ])
    expect(use('execution.labels.all(l, "c" != l)').labels).toEqual(['execution:c'])
  })

  it('counts a reference without strings, and nothing for rules without labels', () => {
    expect(use('size(tool.labels) > 1')).toEqual({ lists: ['tool'], labels: [] })
    expect(use('tool.name == "labels" && args.labels == ["a"]')).toEqual({
      lists: [],
      labels: [],
    })
  })

  it('does not take an unrelated comparison inside a macro for a label', () => {
    expect(use('tool.labels.exists(l, tool.name == "x")').labels).toEqual([])
  })
})

describe('label strings the config does not declare', () => {
  const labels = { declared: ['confidential', 'egress', 'pii'], configFile: '/etc/sluice.yaml' }

  it('stop the load with the file, the rule id, the position and a did-you-mean', () => {
    const file = tmp.write(
      'typo.yaml',
      `rules:
  - id: no-egress-after-confidential
    effect: deny
    when: '"egress" in tool.labels && "confidentail" in execution.labels'
`,
    )
    const err = failure(() => loadPolicies([file], { labels }))
    expect(err.code).toBe('POLICY_INVALID')
    expect(err.message).toBe(
      `invalid policy ${file}:\n  - rules[0].when (id "no-egress-after-confidential"): label "confidentail" (execution.labels, line 1, column 28) is not declared in /etc/sluice.yaml (did you mean "confidential"?)`,
    )
    expect(err.details).toMatchObject({ file, ruleId: 'no-egress-after-confidential' })
  })

  it('list the declared labels when nothing is close, and say when none are declared', () => {
    const file = tmp.write(
      'far.yaml',
      `rules:\n  - id: r\n    effect: deny\n    when: '"secret" in tool.labels'\n`,
    )
    expect(failure(() => loadPolicies([file], { labels })).message).toContain(
      'label "secret" (tool.labels, line 1, column 1) is not declared in /etc/sluice.yaml; declared: confidential, egress, pii',
    )
    expect(
      failure(() => loadPolicies([file], { labels: { ...labels, declared: [] } })).message,
    ).toContain(
      'is not declared in /etc/sluice.yaml; the config declares no labels (servers.<name>.labels, servers.<name>.tools.<tool>.labels)',
    )
  })

  it('are checked in budgets too, and each one once per rule', () => {
    const file = tmp.write(
      'budget.yaml',
      `rules:
  - id: r
    effect: allow
    when: '"egres" in tool.labels || "egres" in tool.labels'
budgets:
  - id: b
    when: '"pi" in execution.labels'
    maxCallsPerExecution: 1
`,
    )
    const err = failure(() => loadPolicies([file], { labels }))
    const problems = (err.details as { problems: Array<{ where: string; message: string }> })
      .problems
    expect(problems.map((p) => p.where)).toEqual(['rules[0].when', 'budgets[0].when'])
    expect(problems[0]!.message).toContain('label "egres"')
    expect(problems[0]!.message).toContain('(did you mean "egress"?)')
    expect(problems[1]!.message).toContain('label "pi"')
    expect(problems[1]!.message).toContain('(did you mean "pii"?)')
  })

  it('load when every label is declared, and are not checked without a config', () => {
    const file = tmp.write(
      'fine.yaml',
      `rules:\n  - id: r\n    effect: deny\n    when: '"egress" in tool.labels && "pii" in execution.labels'\n`,
    )
    expect(loadPolicies([file], { labels }).ruleIds).toEqual(['r'])
    const typo = tmp.write(
      'unchecked.yaml',
      `rules:\n  - id: r\n    effect: deny\n    when: '"anything" in tool.labels'\n`,
    )
    expect(loadPolicies([typo]).ruleIds).toEqual(['r'])
  })
})

describe('case files with labels', () => {
  it('set tool.labels and execution.labels (callCount optional)', () => {
    const policy = tmp.write('cases-policy.yaml', NO_EGRESS)
    const cases = tmp.write(
      'labels.cases.yaml',
      `policy: [${JSON.stringify(policy)}]
cases:
  - name: egress after confidential
    principal: { sub: alice }
    tool: { server: mail, name: send_email, labels: [egress] }
    execution: { labels: [confidential] }
    expect: deny
    rule: no-egress-after-confidential
    listed: true
  - name: egress first
    principal: { sub: alice }
    tool: { server: mail, name: send_email, labels: [egress] }
    execution: { labels: [] }
    expect: allow
`,
    )
    const report = runPolicyCases(cases)
    expect(report.results.map((r) => [r.name, r.ok, r.message])).toEqual([
      ['egress after confidential', true, 'deny by "no-egress-after-confidential"'],
      ['egress first', true, 'allow by "everything"'],
    ])
  })

  it('refuse a label outside the alphabet, naming the case path', () => {
    const policy = tmp.write('cases-policy-2.yaml', NO_EGRESS)
    const cases = tmp.write(
      'bad-labels.cases.yaml',
      `policy: [${JSON.stringify(policy)}]
cases:
  - name: bad
    principal: { sub: alice }
    tool: { server: mail, name: send_email, labels: [Egress] }
    expect: deny
`,
    )
    expect(failure(() => runPolicyCases(cases)).message).toBe(
      `invalid policy cases ${cases}:\n  - cases[0].tool.labels[0]: a label must match ^[a-z][a-z0-9_-]{0,63}$`,
    )
  })
})
