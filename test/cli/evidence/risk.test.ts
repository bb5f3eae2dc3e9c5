/** The risk facts `sluice evidence` reports in its Tool governance domain (control TGV-2). */
import { describe, expect, it } from 'vitest'
import { riskControl, riskFacts } from '../../../src/cli/evidence/risk.js'
import { createLock } from '../../../src/registry/index.js'

const lock = createLock(
  {
    fs: {
      source: { type: 'stdio', command: 'npx', args: ['-y', 'fs@1.0.0'] },
      tools: [
        {
          name: 'read',
          inputSchema: { type: 'object', additionalProperties: false },
          annotations: { readOnlyHint: true, openWorldHint: false },
        },
        {
          name: 'wipe',
          inputSchema: { type: 'object' },
          annotations: { destructiveHint: true, openWorldHint: true },
        },
      ],
    },
  },
  { signed: true },
)

describe('riskFacts and riskControl', () => {
  it('count the levels, list the riskiest with reasons, and find the rules on tool.risk', () => {
    const facts = riskFacts(lock, [
      { id: 'risky-needs-a-human', when: 'tool.risk.score >= 7.0' },
      { id: 'read-only', when: 'tool.annotations.readOnlyHint == true' },
    ])
    expect(facts).toMatchObject({
      scored: 2,
      unscored: [],
      byLevel: { low: 1, medium: 1, high: 0 },
      rules: ['risky-needs-a-human'],
    })
    expect(facts.highest.map((t) => [t.tool, t.score])).toEqual([
      ['fs.wipe', 6.5],
      ['fs.read', 0],
    ])
    const control = riskControl(facts, 'read')
    expect(control.status).toBe('enforced')
    expect(control.evidence[0]).toBe('2 pinned tools scored: 0 high, 1 medium, 1 low')
    expect(control.evidence.at(-1)).toBe('policy rules on tool.risk: risky-needs-a-human')
  })

  it('is partial without a rule on tool.risk or with unscored pins, absent without a lock', () => {
    expect(riskControl(riskFacts(lock, []), 'read').status).toBe('partial')
    const old = structuredClone(lock)
    delete old.servers.fs!.tools.read!.risk
    const facts = riskFacts(old, [{ id: 'r', when: 'tool.risk.level == "high"' }])
    expect(facts.unscored).toEqual(['fs.read'])
    expect(riskControl(facts, 'read').status).toBe('partial')
    expect(riskControl(riskFacts(undefined, []), 'read').status).toBe('absent')
  })
})
