/**
 * Governance domain: policy as code with case files run now (GOV-1), and the `approve` rules
 * that put a human in the loop (GOV-2).
 *
 * @module
 */
import type { Config } from '../../config/index.js'
import { casesFailing, policyObserved, type PolicyFacts } from './policy.js'
import type { Control, ControlStatus } from './types.js'

function casesStatus(pol: PolicyFacts): ControlStatus {
  if (pol.caseFiles.length > 0) return casesFailing(pol) ? 'partial' : 'enforced'
  return pol.files.length > 0 ? 'partial' : 'absent'
}

export function governanceDomain(config: Config, pol: PolicyFacts): Control[] {
  const approveRules = pol.rules.filter((r) => r.effect === 'approve')
  return [
    {
      id: 'GOV-1',
      domain: 'governance',
      control:
        'Policy as code: rules reviewed with case files that must pass in CI (`sluice policy test`)',
      status: casesStatus(pol),
      observed: policyObserved(pol),
      evidence: pol.caseFiles.length
        ? pol.caseFiles.map((c) =>
            c.error
              ? `${c.file}: does not run`
              : `${c.file}: ${c.passed} passing, ${c.failed} failing`,
          )
        : ['no case files'],
    },
    {
      id: 'GOV-2',
      domain: 'governance',
      control:
        'Human approval: calls matching `approve` rules wait for a human through MCP elicitation',
      status: approveRules.length > 0 ? 'enforced' : 'absent',
      observed: `${policyObserved(pol)}; ${approveRules.length} approve rule(s) among them`,
      evidence: approveRules.length
        ? [
            ...approveRules.map((r) => `approve rule ${r.id} (${r.file})`),
            `approval timeout ${config.gateway.approvalTimeoutMs} ms; decline, timeout and clients without elicitation → APPROVAL_DENIED, audited`,
          ]
        : ['no approve rules'],
    },
  ]
}
