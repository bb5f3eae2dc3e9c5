/**
 * The shipped policies in CI: the built CLI (`npm test` builds first) runs every case file under
 * `policies/` and checks every policy file; every case passes, every rule of the demo policy is
 * exercised by a case, and a failing case makes the command fail (so the check can bite).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT } from './helpers/runtime.js'

const MAIN = join(ROOT, 'dist', 'src', 'main.js')
const POLICIES = join(ROOT, 'policies')
const temp = mkdtempSync(join(tmpdir(), 'sluice-policies-'))
afterAll(() => rmSync(temp, { recursive: true, force: true }))

function sluice(...args: string[]) {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`)
  const r = spawnSync(process.execPath, [MAIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

const caseFiles = readdirSync(POLICIES).filter((f) => f.endsWith('.cases.yaml'))
const policyFiles = readdirSync(POLICIES).filter(
  (f) => f.endsWith('.yaml') && !f.endsWith('.cases.yaml'),
)

describe('sluice policy test policies', () => {
  it('passes every case of every shipped case file', () => {
    const r = sluice('policy', 'test', 'policies')
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const lines = r.stdout.trim().split('\n')
    const results = lines.filter((l) => /^(ok {2}|FAIL) /.test(l))
    const expected = caseFiles.reduce(
      (n, f) =>
        n + (parse(readFileSync(join(POLICIES, f), 'utf8')) as { cases: unknown[] }).cases.length,
      0,
    )
    expect(results).toHaveLength(expected)
    expect(results.filter((l) => l.startsWith('FAIL'))).toEqual([])
    expect(lines.at(-1)).toBe(`policy cases: ${expected} ok, 0 failing`)
  })

  it('has a case deciding by every rule of every shipped policy', () => {
    const ruled = new Set(
      caseFiles.flatMap((f) =>
        (
          parse(readFileSync(join(POLICIES, f), 'utf8')) as { cases: Array<{ rule?: string }> }
        ).cases.map((c) => c.rule),
      ),
    )
    for (const file of policyFiles) {
      const policy = parse(readFileSync(join(POLICIES, file), 'utf8')) as {
        rules: Array<{ id: string }>
      }
      const untested = policy.rules.map((r) => r.id).filter((id) => !ruled.has(id))
      expect(untested, `${file}: rules without a case`).toEqual([])
    }
  })

  it('fails with exit 1 and names the case when a case does not hold', () => {
    writeFileSync(
      join(temp, 'wrong.cases.yaml'),
      [
        `policy: [${JSON.stringify(join(POLICIES, 'demo.yaml'))}]`,
        'cases:',
        '  - name: get-env is wrongly expected to run',
        '    principal: { sub: alice }',
        '    tool: { server: everything, name: get-env, annotations: { readOnlyHint: true } }',
        '    expect: allow',
      ].join('\n'),
    )
    const r = sluice('policy', 'test', temp)
    expect(r.status).toBe(1)
    expect(r.stdout).toContain('FAIL')
    expect(r.stdout).toContain(
      'get-env is wrongly expected to run — expected allow, got deny (rule everything-no-env)',
    )
    expect(r.stdout.trim().split('\n').at(-1)).toBe('policy cases: 0 ok, 1 failing')
  })
})

describe('sluice policy check policies', () => {
  it('loads and type-checks every shipped policy file', () => {
    const r = sluice('policy', 'check', 'policies')
    expect(r.status).toBe(0)
    const rules = policyFiles.reduce(
      (n, f) =>
        n + (parse(readFileSync(join(POLICIES, f), 'utf8')) as { rules: unknown[] }).rules.length,
      0,
    )
    expect(r.stdout.trim()).toBe(`ok: ${rules} rules in ${policyFiles.length} files`)
  })

  it('refuses a policy whose CEL does not type-check, naming the rule', () => {
    writeFileSync(
      join(temp, 'broken.yaml'),
      'rules:\n  - id: broken-rule\n    effect: allow\n    when: tool.server ==\n',
    )
    const r = sluice('policy', 'check', join(temp, 'broken.yaml'))
    expect(r.status).not.toBe(0)
    expect(r.stderr).toContain('broken-rule')
  })
})
