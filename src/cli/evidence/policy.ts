/**
 * The policy in force as data: its files, every rule and budget, and the results of the case
 * files beside them (run now). Shared by the access and governance domains.
 *
 * @module
 */
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Config } from '../../config/index.js'
import { allowAllPolicy, loadPolicies, runPolicyCases } from '../../policy/index.js'
import { message, oneLine, shown } from './util.js'

export interface PolicyFacts {
  files: string[]
  rules: Array<{ id: string; effect: string; when: string; file: string }>
  budgets: string[]
  caseFiles: Array<{ file: string; passed: number; failed: number; error?: string }>
  loadError?: string
}

export function policyFacts(config: Config): PolicyFacts {
  const files = (config.policies ?? []).map(shown)
  const facts: PolicyFacts = { files, rules: [], budgets: [], caseFiles: [] }
  try {
    const set = config.policies?.length ? loadPolicies(config.policies) : allowAllPolicy()
    const summary = set.describe()
    facts.rules = summary.rules.map((r) => ({
      id: r.id,
      effect: r.effect,
      when: oneLine(r.when),
      file: shown(r.file),
    }))
    facts.budgets = summary.budgets.map(
      (b) => `${b.id}: ${b.maxCallsPerExecution} calls per execution when ${oneLine(b.when)}`,
    )
  } catch (cause) {
    facts.loadError = message(cause)
    return facts
  }
  facts.caseFiles = caseFiles(config.policies ?? [])
  return facts
}

/** Case files beside the policy files (`*.cases.yaml`), each run against the policies it names. */
function caseFiles(policies: readonly string[]): PolicyFacts['caseFiles'] {
  const results: PolicyFacts['caseFiles'] = []
  for (const dir of new Set(policies.map((f) => dirname(f)))) {
    const names = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.cases.yaml'))
          .sort()
      : []
    for (const name of names) {
      const file = join(dir, name)
      try {
        const report = runPolicyCases(file)
        results.push({ file: shown(file), passed: report.passed, failed: report.failed })
      } catch (cause) {
        results.push({ file: shown(file), passed: 0, failed: 0, error: message(cause) })
      }
    }
  }
  return results
}

/** Some case file fails or does not run. */
export function casesFailing(pol: PolicyFacts): boolean {
  return pol.caseFiles.some((c) => c.failed > 0 || c.error !== undefined)
}

/** What was looked at, for the `observed` of a policy control. */
export function policyObserved(pol: PolicyFacts): string {
  if (pol.loadError) return `loaded ${pol.files.length} policy file(s): they do not load`
  if (pol.files.length === 0) return 'read policies in the config: none'
  return `loaded ${pol.files.length} policy file(s) (${pol.rules.length} rules) and ran ${pol.caseFiles.length} case file(s) beside them`
}
