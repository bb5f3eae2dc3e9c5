/**
 * The risk facts of the Tool governance domain of `sluice evidence`: how many pinned tools carry
 * a risk score, how they spread over the levels, the riskiest ones with their reasons, and
 * whether a policy rule acts on `tool.risk` (control TGV-2).
 *
 * @module
 */
import type { LockFile } from '../../registry/index.js'
import type { Risk } from '../../types.js'
import type { Control } from './types.js'

/** Riskiest tools listed by name in the evidence. */
export const RISK_EVIDENCE_TOP = 5

export interface RiskFacts {
  /** Pinned tools with a score, and without (a lock written before scores existed). */
  scored: number
  unscored: string[]
  byLevel: Record<Risk['level'], number>
  /** The riskiest pinned tools, highest first (ties by name). */
  highest: Array<{ tool: string } & Risk>
  /** Ids of policy rules whose `when` reads `tool.risk`. */
  rules: string[]
}

export function riskFacts(
  lock: LockFile | undefined,
  rules: ReadonlyArray<{ id: string; when: string }>,
): RiskFacts {
  const facts: RiskFacts = {
    scored: 0,
    unscored: [],
    byLevel: { low: 0, medium: 0, high: 0 },
    highest: [],
    rules: rules.filter((r) => /\btool\.risk\b/.test(r.when)).map((r) => r.id),
  }
  const all: Array<{ tool: string } & Risk> = []
  for (const [server, entry] of Object.entries(lock?.servers ?? {})) {
    for (const [name, pin] of Object.entries(entry.tools)) {
      if (pin.risk === undefined) {
        facts.unscored.push(`${server}.${name}`)
        continue
      }
      facts.scored++
      facts.byLevel[pin.risk.level]++
      all.push({ tool: `${server}.${name}`, ...pin.risk })
    }
  }
  facts.unscored.sort()
  facts.highest = all
    .sort((a, b) => b.score - a.score || (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0))
    .slice(0, RISK_EVIDENCE_TOP)
  return facts
}

/** The control these facts support; `observed` says which lock and policy were read. */
export function riskControl(facts: RiskFacts, observed: string): Control {
  const evidence: string[] = []
  if (facts.scored === 0) {
    evidence.push(
      facts.unscored.length === 0
        ? 'no pinned tools: nothing is scored'
        : `${facts.unscored.length} pinned tools carry no risk score (re-pin with \`sluice lock\`)`,
    )
  } else {
    const { low, medium, high } = facts.byLevel
    evidence.push(`${facts.scored} pinned tools scored: ${high} high, ${medium} medium, ${low} low`)
    for (const t of facts.highest)
      evidence.push(`${t.tool}: ${t.level} ${t.score.toFixed(1)} (${t.reasons.join('; ')})`)
    if (facts.unscored.length > 0)
      evidence.push(`not scored: ${facts.unscored.join(', ')} (re-pin with \`sluice lock\`)`)
  }
  evidence.push(
    facts.rules.length > 0
      ? `policy rules on tool.risk: ${facts.rules.join(', ')}`
      : 'no policy rule reads tool.risk',
  )
  const status =
    facts.scored > 0 && facts.unscored.length === 0 && facts.rules.length > 0
      ? 'enforced'
      : facts.scored > 0
        ? 'partial'
        : 'absent'
  return {
    id: 'TGV-2',
    domain: 'tool governance',
    control:
      'Every pinned tool carries a risk score, explained field by field, and policy acts on it',
    status,
    observed,
    evidence,
  }
}
