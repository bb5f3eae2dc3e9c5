/**
 * `sluice policy test CASES...` runs policy case files; `sluice policy check FILES...` only loads
 * and type-checks policies.
 *
 * @module
 */
import { readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { loadPolicies, runPolicyCases } from '../policy/index.js'
import { usage, type Command } from './index.js'

function expand(paths: string[], suffix: string): string[] {
  return paths.flatMap((p) => {
    const abs = resolve(p)
    try {
      return readdirSync(abs)
        .filter((f) => f.endsWith(suffix))
        .sort()
        .map((f) => join(abs, f))
    } catch {
      return [abs]
    }
  })
}

export const policyCommand: Command = {
  name: 'policy',
  summary: 'Test policies against case files (policy test) or only check them (policy check)',
  usage: 'sluice policy test CASES_FILE_OR_DIR... | sluice policy check POLICY_FILE_OR_DIR...',
  description:
    'policy check parses and type-checks every rule of the policy files (default: policies/). policy test runs *.cases.yaml files: each case names a principal, a tool and arguments and the decision it expects. Exit 0 when all pass, 1 when one fails, 2 when a file does not load.',
  examples: [
    'sluice policy check policies/demo.yaml',
    'sluice policy test policies/demo.cases.yaml',
  ],
  options: {},
  async run({ positionals }) {
    const [sub, ...paths] = positionals
    if (sub === 'check') {
      const files = expand(paths.length ? paths : ['policies'], '.yaml').filter(
        (f) => !f.endsWith('.cases.yaml'),
      )
      const set = loadPolicies(files)
      process.stdout.write(`ok: ${set.ruleIds.length} rules in ${files.length} files\n`)
      return 0
    }
    if (sub !== 'test') throw usage('expected `policy test` or `policy check`')
    const files = expand(paths.length ? paths : ['policies'], '.cases.yaml')
    if (files.length === 0) throw usage('no case files (*.cases.yaml) found')
    let failed = 0
    let passed = 0
    for (const file of files) {
      const report = runPolicyCases(file)
      for (const r of report.results) {
        process.stdout.write(
          `${r.ok ? 'ok  ' : 'FAIL'} ${file}: ${r.name}${r.ok ? '' : ` — expected ${r.expected}, got ${r.actual} (rule ${r.ruleId})`}\n`,
        )
      }
      passed += report.passed
      failed += report.failed
    }
    process.stdout.write(`policy cases: ${passed} ok, ${failed} failing\n`)
    return failed === 0 ? 0 : 1
  },
}
