/**
 * Case files: the shipped demo cases pass, and a failing or malformed case says what to fix.
 */
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { formatCaseReport, loadPolicies, runPolicyCases } from '../../src/policy/index.js'
import { failure, tempDir } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const demoCases = fileURLToPath(new URL('../../policies/demo.cases.yaml', import.meta.url))
const demoPolicy = fileURLToPath(new URL('../../policies/demo.yaml', import.meta.url))

const POLICY = `rules:
  - id: read
    effect: allow
    when: tool.name == "read"
  - id: no-secret
    effect: deny
    when: tool.name == "read" && args.path == "secret"
`

describe('runPolicyCases', () => {
  it('passes every case of the shipped demo case file (at least 15)', () => {
    const report = runPolicyCases(demoCases)
    expect(report.results.filter((r) => !r.ok)).toEqual([])
    expect(report.passed).toBeGreaterThanOrEqual(15)
    expect(report.failed).toBe(0)
  })

  it('runs the demo cases against a policy set passed in', () => {
    const report = runPolicyCases(loadPolicies([demoPolicy]), demoCases)
    expect(report.failed).toBe(0)
  })

  it('denies the demo path attacks by matching, not by evaluation errors', () => {
    const set = loadPolicies([demoPolicy])
    const carol = {
      sub: 'carol',
      iss: 'local',
      scopes: ['files:write'],
      claims: {},
      authMethod: 'local' as const,
    }
    for (const path of [
      'README.md',
      'notes/../README.md',
      'notes/%2e%2e/x',
      'notes\\x',
      'notes//x',
      'notes/a\nb',
      '/etc/passwd',
      '~/x',
    ]) {
      const d = set.decide({
        principal: carol,
        tool: { server: 'filesystem', name: 'write_file', annotations: {}, hash: '' },
        args: { path, content: 'x' },
      })
      expect(d, path).toMatchObject({
        effect: 'deny',
        ruleId: 'filesystem-write-only-in-notes',
        reason:
          'denied by rule "filesystem-write-only-in-notes": file writes stay inside notes/ and use canonical relative paths',
      })
    }
  })

  it('reports a wrong effect, a wrong rule and a wrong listing in words a human can act on', () => {
    tmp.write('p.yaml', POLICY)
    const file = tmp.write(
      'p.cases.yaml',
      `policy: [p.yaml]
cases:
  - name: reads run
    principal: { sub: a }
    tool: { server: s, name: read }
    args: { path: notes }
    expect: allow
    rule: read
    listed: true
  - name: secret expected allowed
    principal: { sub: a }
    tool: { server: s, name: read }
    args: { path: secret }
    expect: allow
  - name: wrong rule expected
    principal: { sub: a }
    tool: { server: s, name: write }
    expect: deny
    rule: no-secret
  - name: wrong listing expected
    principal: { sub: a }
    tool: { server: s, name: write }
    expect: deny
    listed: true
`,
    )
    const report = runPolicyCases(file)
    expect(report).toMatchObject({ file, passed: 1, failed: 3 })
    expect(report.results[0]).toEqual({
      name: 'reads run',
      ok: true,
      expected: 'allow',
      actual: 'allow',
      ruleId: 'read',
      message: 'allow by "read"',
    })
    expect(report.results[1]).toMatchObject({
      ok: false,
      expected: 'allow',
      actual: 'deny',
      ruleId: 'no-secret',
      message: 'expected allow, got deny (denied by rule "no-secret")',
    })
    expect(report.results[2]?.message).toBe(
      'expected rule "no-secret" to decide, but "default-deny" did (denied: no rule allows this call (deny by default))',
    )
    expect(report.results[3]?.message).toBe('expected s.write to be listed for a, but it is hidden')
    const text = formatCaseReport(report)
    expect(text.split('\n')[0]).toMatch(/^FAIL /)
    expect(text).toContain(`${file}: 1 passed, 3 failed`)
  })

  it('refuses a malformed case file with the path of each problem', () => {
    const file = tmp.write(
      'bad.cases.yaml',
      `policy: [p.yaml]
cases:
  - name: typo
    principal: { sub: a, scope: [x] }
    tool: { server: s, name: read }
    expect: permit
`,
    )
    const err = failure(() => runPolicyCases(file))
    expect(err.code).toBe('POLICY_INVALID')
    expect(err.message).toContain(`invalid policy cases ${file}:`)
    expect(err.message).toContain('cases[0].principal: unknown key(s) "scope"')
    expect(err.message).toContain('cases[0].expect:')
  })

  it('sets tool.risk as the lock would pin it: a rule on tool.risk decides, unscored is low', () => {
    const policy = tmp.write(
      'risk.yaml',
      `rules:
  - id: risky-needs-a-human
    effect: approve
    when: tool.risk.level == "high" && tool.risk.score >= 7.0
  - id: the-rest
    effect: allow
    when: "true"
`,
    )
    const file = tmp.write(
      'risk.cases.yaml',
      `policy: [risk.yaml]
cases:
  - name: a high-risk tool waits for a human
    principal: { sub: a }
    tool: { server: s, name: wipe, risk: { score: 8.5, level: high, reasons: [destructive] } }
    expect: approve
    rule: risky-needs-a-human
  - name: an unscored tool counts as low
    principal: { sub: a }
    tool: { server: s, name: read }
    expect: allow
    rule: the-rest
`,
    )
    expect(loadPolicies([policy]).describe().rules).toHaveLength(2)
    const report = runPolicyCases(file)
    expect(report).toMatchObject({ passed: 2, failed: 0 })
    const bad = tmp.write(
      'risk-bad.cases.yaml',
      `policy: [risk.yaml]
cases:
  - { name: x, principal: { sub: a }, tool: { server: s, name: t, risk: { score: 11, level: severe } }, expect: allow }
`,
    )
    const err = failure(() => runPolicyCases(bad))
    expect(err.message).toContain('cases[0].tool.risk.score:')
    expect(err.message).toContain('cases[0].tool.risk.level:')
  })

  it('refuses a case file without policy files when no policy set is given', () => {
    const file = tmp.write(
      'nopolicy.cases.yaml',
      'cases:\n  - { name: a, principal: { sub: a }, tool: { server: s, name: t }, expect: deny }\n',
    )
    expect(failure(() => runPolicyCases(file)).message).toContain(
      'policy: name the policy files to test',
    )
    expect(
      runPolicyCases(loadPolicies([tmp.write('empty.yaml', 'rules: []\n')]), file).passed,
    ).toBe(1)
  })

  it('refuses a missing case file', () => {
    expect(failure(() => runPolicyCases(`${tmp.dir}/nope.cases.yaml`)).message).toContain(
      'file not found',
    )
  })

  it('passes a case file policy load failure through as POLICY_INVALID', () => {
    tmp.write('broken.yaml', 'rules:\n  - { id: b, effect: allow, when: "nope" }\n')
    const file = tmp.write(
      'broken.cases.yaml',
      'policy: [broken.yaml]\ncases:\n  - { name: a, principal: { sub: a }, tool: { server: s, name: t }, expect: deny }\n',
    )
    const err = failure(() => runPolicyCases(file))
    expect(err.message).toContain('Unknown variable: nope')
  })
})
