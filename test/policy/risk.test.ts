/**
 * Issue 15, item 3: `tool.risk` in CEL. The score pinned in the lock is the one policy sees (a
 * lock that says read_item is risky makes it need approval), a tool the lock does not pin is
 * scored from its live definition, and a rule on the score type-checks at load.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/index.js'
import { loadPolicies } from '../../src/policy/index.js'
import { createLock } from '../../src/registry/index.js'
import { UpstreamSet } from '../../src/upstream/index.js'
import { SERVERS, testRuntime } from '../helpers/runtime.js'

const POLICY = `
rules:
  - id: rec-tools
    effect: allow
    when: tool.server == "rec"
  - id: risky-needs-a-human
    effect: approve
    when: tool.risk.score >= 7.0
`

async function liveTools() {
  const config = parseConfig({
    servers: { rec: { command: process.execPath, args: [SERVERS.recording] } },
  })
  const upstreams = new UpstreamSet(config.servers, { callTimeoutMs: 10_000 })
  try {
    return await upstreams.get('rec')!.listTools({ timeoutMs: 10_000 })
  } finally {
    await upstreams.close()
  }
}

describe('tool.risk in policy', () => {
  it('is the score pinned in the lock: read_item marked 9.5 there needs a human, get-sum does not', async () => {
    const tools = await liveTools()
    const lock = createLock({
      rec: {
        source: { type: 'stdio', command: process.execPath, args: [SERVERS.recording] },
        tools,
      },
    })
    lock.servers.rec!.tools.read_item!.risk = {
      score: 9.5,
      level: 'high',
      reasons: ['+9.5 a reviewer said so'],
    }
    const rt = await testRuntime({
      recording: true,
      policy: POLICY,
      config: { lock: { file: 'sluice.lock.json', allowUnpinned: true } },
      before: (dir) => writeFileSync(join(dir, 'sluice.lock.json'), JSON.stringify(lock)),
    })
    try {
      const read = rt.engine.catalog.tools().find((t) => t.name === 'read_item')
      expect(read?.risk).toEqual({
        score: 9.5,
        level: 'high',
        reasons: ['+9.5 a reviewer said so'],
      })
      const sum = rt.engine.catalog.tools().find((t) => t.name === 'get-sum')
      expect(sum!.risk!.score).toBeLessThan(7)
      const out = await rt.engine.execute(
        rt.principal(),
        "return await tools.rec.read_item({ id: '1' })",
      )
      expect(out.error).toMatchObject({ code: 'APPROVAL_DENIED' })
      expect(out.error?.message).toContain('risky-needs-a-human')
      const ok = await rt.engine.execute(
        rt.principal(),
        'return await tools.rec.get_sum({ a: 1, b: 2 })',
      )
      expect(ok).toMatchObject({ ok: true, result: 3 })
      expect(rt.recorded().map((r) => r.tool)).toEqual(['get-sum'])
    } finally {
      await rt.close()
    }
  })

  it('is scored from the live definition when the tool is not pinned', async () => {
    const rt = await testRuntime({ recording: true, policy: POLICY })
    try {
      const del = rt.engine.catalog.tools().find((t) => t.name === 'delete_item')!
      expect(del.risk!.reasons).toContain('+2 annotations.destructiveHint: true')
      expect(del.risk!.reasons).toContain('+1 lock: not signed')
      const read = rt.engine.catalog.tools().find((t) => t.name === 'read_item')!
      expect(read.risk!.reasons.some((r) => r.includes('readOnlyHint'))).toBe(false)
      expect(del.risk!.score).toBeGreaterThan(read.risk!.score)
    } finally {
      await rt.close()
    }
  })

  it('type-checks rules on score, level and reasons at load, and refuses a field it does not have', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-risk-'))
    const good = join(dir, 'good.yaml')
    writeFileSync(
      good,
      `rules:\n  - id: r\n    effect: approve\n    when: tool.risk.level == "high" || tool.risk.reasons.exists(x, x.contains("destructive")) || tool.risk.score > 6\n`,
    )
    expect(() => loadPolicies([good])).not.toThrow()
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, `rules:\n  - id: r\n    effect: approve\n    when: tool.risk.scroe > 6.0\n`)
    try {
      expect(() => loadPolicies([bad])).toThrowError(
        expect.objectContaining({
          code: 'POLICY_INVALID',
          message: expect.stringContaining('scroe'),
        }),
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
