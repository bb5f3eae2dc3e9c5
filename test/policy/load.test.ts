/**
 * Loading policy files: strict shape, typed CEL environment, bool `when`, unique ids, and errors
 * that name the file, the rule and the position.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { POLICY_CEL_LIMITS, loadPolicies } from '../../src/policy/index.js'
import { failure, policyFrom, tempDir } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const rule = (id: string, when: string, effect = 'allow'): string =>
  `  - id: ${id}\n    effect: ${effect}\n    when: ${JSON.stringify(when)}\n`

describe('loadPolicies', () => {
  it('loads rules and budgets from several files and describes them', () => {
    const a = tmp.write('a.yaml', `rules:\n${rule('read', 'tool.server == "memory"')}`)
    const b = tmp.write(
      'b.yaml',
      `rules:\n${rule('no-env', 'tool.name == "get-env"', 'deny')}budgets:\n  - id: mail\n    when: tool.server == "mail"\n    maxCallsPerExecution: 3\n`,
    )
    const set = loadPolicies([a, b])
    expect(set.files).toEqual([a, b])
    expect(set.ruleIds).toEqual(['read', 'no-env'])
    expect(set.describe()).toEqual({
      kind: 'policies',
      files: [a, b],
      rules: [
        { id: 'read', effect: 'allow', when: 'tool.server == "memory"', file: a },
        { id: 'no-env', effect: 'deny', when: 'tool.name == "get-env"', file: b },
      ],
      budgets: [{ id: 'mail', when: 'tool.server == "mail"', maxCallsPerExecution: 3, file: b }],
    })
  })

  it('keeps a description in the summary', () => {
    const set = policyFrom(
      tmp,
      'rules:\n  - id: r\n    effect: allow\n    description: why\n    when: "true"\n',
    )
    expect(set.describe().rules[0]).toMatchObject({ id: 'r', description: 'why' })
  })

  it('accepts an empty rule list (everything is denied by default)', () => {
    expect(policyFrom(tmp, 'rules: []\n').ruleIds).toEqual([])
  })

  it('refuses unknown keys at the top level and in a rule, naming the file and the rule', () => {
    const file = tmp.write(
      'unknown.yaml',
      `rule: []\nrules:\n${rule('r', 'true')}    effects: deny\n`,
    )
    const err = failure(() => loadPolicies([file]))
    expect(err.code).toBe('POLICY_INVALID')
    expect(err.message).toContain(`invalid policy ${file}:`)
    expect(err.message).toContain('(top level): unknown key "rule"')
    expect(err.details).toMatchObject({ file })
  })

  it('refuses an unknown key inside a rule with the rule id', () => {
    const file = tmp.write(
      'unknown-in-rule.yaml',
      `rules:\n${rule('r', 'true')}    effects: deny\n`,
    )
    const err = failure(() => loadPolicies([file]))
    expect(err.message).toContain('rules[0] (id "r"): unknown key "effects"')
    expect(err.details).toMatchObject({ file, ruleId: 'r' })
  })

  it('refuses a bad effect', () => {
    const file = tmp.write('effect.yaml', `rules:\n${rule('r', 'true', 'permit')}`)
    const err = failure(() => loadPolicies([file]))
    expect(err.message).toMatch(/rules\[0\]\.effect \(id "r"\): .*"allow"\|"deny"\|"approve"/)
  })

  it('refuses a missing when and an id outside the id pattern', () => {
    const file = tmp.write('shape.yaml', 'rules:\n  - id: "has space"\n    effect: allow\n')
    const err = failure(() => loadPolicies([file]))
    expect(err.message).toContain('rules[0].id (id "has space"): an id must match')
    expect(err.message).toContain('rules[0].when (id "has space")')
  })

  it('accepts an id of 128 characters and refuses 129', () => {
    expect(policyFrom(tmp, `rules:\n${rule('a'.repeat(128), 'true')}`).ruleIds).toEqual([
      'a'.repeat(128),
    ])
    expect(
      failure(() => policyFrom(tmp, `rules:\n${rule('b'.repeat(129), 'true')}`)).message,
    ).toContain('an id must match')
  })

  it('refuses duplicate ids across files, naming both places', () => {
    const a = tmp.write('dup-a.yaml', `rules:\n${rule('same', 'true')}`)
    const b = tmp.write(
      'dup-b.yaml',
      `budgets:\n  - id: same\n    when: "true"\n    maxCallsPerExecution: 1\n`,
    )
    const err = failure(() => loadPolicies([a, b]))
    expect(err.message).toContain(`invalid policy ${b}:`)
    expect(err.message).toContain(
      `budgets[0] (id "same"): duplicate id "same" (also in ${a} rules[0])`,
    )
  })

  it('refuses the same file listed twice', () => {
    const a = tmp.write('twice.yaml', `rules:\n${rule('once', 'true')}`)
    expect(failure(() => loadPolicies([a, a])).message).toContain('file: listed more than once')
  })

  it('refuses a CEL syntax error with its position and a source excerpt', () => {
    const file = tmp.write('syntax.yaml', `rules:\n${rule('broken', 'tool.name == "a" &&')}`)
    const err = failure(() => loadPolicies([file]))
    expect(err.message).toContain(
      'rules[0].when (id "broken"): does not parse: Unexpected token: EOF at line 1, column 20',
    )
    expect(err.message).toContain('>    1 | tool.name == "a" &&')
  })

  it('fails the load on an unknown variable (unlisted CEL variable is not dyn)', () => {
    const file = tmp.write('unknown-var.yaml', `rules:\n${rule('typo', 'user.sub == "a"')}`)
    const err = failure(() => loadPolicies([file]))
    expect(err.message).toContain(file)
    expect(err.message).toContain(
      'rules[0].when (id "typo"): does not type-check: Unknown variable: user at line 1, column 1',
    )
  })

  it('fails the load on an unknown field of a typed variable', () => {
    const err = failure(() => policyFrom(tmp, `rules:\n${rule('f', 'principal.subject == "a"')}`))
    expect(err.message).toContain('does not type-check: No such key: subject')
  })

  it('fails the load on a type error', () => {
    const err = failure(() => policyFrom(tmp, `rules:\n${rule('t', 'principal.sub + 1 == "a"')}`))
    expect(err.message).toMatch(/\(id "t"\): does not type-check: no such overload: string \+ int/)
  })

  it('fails the load when when is not bool, naming file and id', () => {
    const file = tmp.write(
      'not-bool.yaml',
      `rules:\n${rule('ok', 'true')}${rule('name-only', 'tool.name')}`,
    )
    const err = failure(() => loadPolicies([file]))
    expect(err.message).toContain(`invalid policy ${file}:`)
    expect(err.message).toContain(
      'rules[1].when (id "name-only"): must be a bool expression, but its type is string',
    )
    expect(err.details).toMatchObject({ file, ruleId: 'name-only' })
  })

  it('refuses a dyn when and says how to fix it', () => {
    const err = failure(() =>
      policyFrom(tmp, `rules:\n${rule('d', 'tool.annotations.readOnlyHint')}`),
    )
    expect(err.message).toContain(
      'must be a bool expression, but its type is dyn (compare the value, e.g. `args.flag == true`)',
    )
  })

  it('checks budget conditions like rule conditions', () => {
    const err = failure(() =>
      policyFrom(tmp, 'budgets:\n  - id: b\n    when: "args.x"\n    maxCallsPerExecution: 1\n'),
    )
    expect(err.message).toContain('budgets[0].when (id "b"): must be a bool expression')
  })

  it('refuses a negative or fractional maxCallsPerExecution', () => {
    const err = failure(() =>
      policyFrom(tmp, 'budgets:\n  - id: b\n    when: "true"\n    maxCallsPerExecution: 1.5\n'),
    )
    expect(err.message).toContain('budgets[0].maxCallsPerExecution (id "b")')
  })

  it('reports every problem of every file at once', () => {
    const a = tmp.write('many-a.yaml', `rules:\n${rule('x', 'foo == 1')}${rule('y', 'tool.name')}`)
    const b = tmp.write('many-b.yaml', `rules:\n${rule('z', '1 +')}`)
    const err = failure(() => loadPolicies([a, b]))
    expect(err.details?.problems).toHaveLength(3)
    expect(err.message).toContain(`invalid policy ${a}:`)
    expect(err.message).toContain(`invalid policy ${b}:`)
  })

  it('refuses a missing file, invalid YAML, duplicate YAML keys and a non-mapping', () => {
    expect(failure(() => loadPolicies([`${tmp.dir}/missing.yaml`])).message).toContain(
      'file: file not found',
    )
    const bad = tmp.write('bad.yaml', 'rules: [\n')
    expect(failure(() => loadPolicies([bad])).message).toContain('file: not valid YAML')
    const dupKey = tmp.write('dupkey.yaml', 'rules: []\nrules: []\n')
    expect(failure(() => loadPolicies([dupKey])).message).toContain('not valid YAML')
    const list = tmp.write('list.yaml', '- id: a\n')
    expect(failure(() => loadPolicies([list])).message).toContain(
      'expected a mapping with `rules:` and/or `budgets:`',
    )
    const empty = tmp.write('empty.yaml', '')
    expect(failure(() => loadPolicies([empty])).message).toContain('expected a mapping')
  })

  it(`allows a when of maxAstNodes (${POLICY_CEL_LIMITS.maxAstNodes}) nodes and refuses one more`, () => {
    // n `true`s joined by `||` are 2n - 1 nodes; each `!` adds one.
    const trues = Array(1000).fill('true').join(' || ')
    expect(POLICY_CEL_LIMITS.maxAstNodes).toBe(2000)
    expect(policyFrom(tmp, `rules:\n${rule('n', `!${trues}`)}`).ruleIds).toEqual(['n'])
    const err = failure(() => policyFrom(tmp, `rules:\n${rule('n1', `!!${trues}`)}`))
    expect(err.message).toContain('(id "n1"): does not parse: Exceeded maxAstNodes (2000)')
  })

  it('loads the shipped demo policy', () => {
    const set = loadPolicies([new URL('../../policies/demo.yaml', import.meta.url).pathname])
    expect(set.ruleIds).toContain('filesystem-write-only-in-notes')
    expect(set.describe().budgets.map((b) => b.id)).toEqual(['filesystem-writes', 'memory-changes'])
  })
})
