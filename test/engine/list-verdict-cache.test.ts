/**
 * The dispatcher keeps each call's listing verdict (may this caller see this tool?) by principal
 * and tool definition, within one config generation. Hostile cases: another principal (other
 * scopes, other claims, other tenant) never gets a verdict kept for someone else; a reload never
 * reuses a verdict of the policy before it; a policy whose rules read `now` keeps nothing.
 * Real engine, the recording fixture.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadPolicies, type PolicySet } from '../../src/policy/index.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import type { Principal } from '../../src/types.js'

const POLICY = `
rules:
  - id: rec-reads
    effect: allow
    when: tool.server == "rec" && tool.name != "delete_item"
  - id: writers-delete
    effect: allow
    when: tool.name == "delete_item" && "write" in principal.scopes && principal.claims.tier == "pro"
  - id: no-tenant-b
    effect: deny
    when: has(principal.tenant) && principal.tenant == "b"
`
const DENY_DELETES = `
rules:
  - id: rec-all
    effect: allow
    when: tool.server == "rec"
  - id: deletes-off
    effect: deny
    when: tool.name == "delete_item"
`

let rt: TestRuntime
let dir: string
beforeAll(async () => {
  rt = await testRuntime({ recording: true, policy: POLICY })
  dir = mkdtempSync(join(tmpdir(), 'sluice-list-cache-'))
})
afterAll(async () => {
  await rt?.close()
  rmSync(dir, { recursive: true, force: true })
})

const DELETE =
  "try { await tools.rec.delete_item({ id: '1' }); return 'ran' } catch (e) { return e.code }"
const writer = (overrides: Partial<Principal> = {}) =>
  rt.principal({ scopes: ['write'], claims: { tier: 'pro' }, ...overrides })
const run = async (principal: Principal, code = DELETE) =>
  (await rt.engine.execute(principal, code)).result

function policyFrom(text: string): PolicySet {
  const file = join(dir, `policy-${Math.random().toString(36).slice(2)}.yaml`)
  writeFileSync(file, text)
  return loadPolicies([file])
}

/**
 * The policy with its listing verdicts counted (what the dispatcher asks per call); `absent`
 * leaves out `listingIsTimeless`, as a PolicySet that does not know would.
 */
function counted(real: PolicySet, timeless: 'inherit' | 'absent' = 'inherit') {
  const asked = { n: 0 }
  const policy: PolicySet = {
    files: real.files,
    ruleIds: real.ruleIds,
    decide: (input) => real.decide(input),
    canList: (input) => real.canList(input),
    listVerdict: (input) => {
      asked.n++
      return real.listVerdict(input)
    },
    budgetsFor: (input) => real.budgetsFor(input),
    describe: () => real.describe(),
    ...(timeless === 'absent' ? {} : { listingIsTimeless: real.listingIsTimeless }),
  }
  return { policy, asked }
}

/**
 * Arguments that break the schema: a caller who may see the tool hears INVALID_ARGS (its schema),
 * one it is hidden from hears TOOL_DENIED before the schema is looked at. A verdict kept for the
 * wrong principal would show as INVALID_ARGS here.
 */
const PROBE =
  "try { await tools.rec.delete_item({ nope: 1 }); return 'ran' } catch (e) { return e.code + ': ' + e.message }"
const HIDDEN =
  'TOOL_DENIED: tools.rec.delete_item exists but is not available to this caller (policy: no rule allows it)'

describe('the listing verdict kept per principal and generation', () => {
  it('another principal never gets the verdict kept for the first one', async () => {
    // The writer's verdict ("listed") is kept first, then each variation is asked afresh.
    expect(await run(writer())).toBe('ran')
    expect(await run(writer(), PROBE)).toMatch(/^INVALID_ARGS: /)
    expect(await run(rt.principal({ claims: { tier: 'pro' } }), PROBE)).toBe(HIDDEN)
    expect(await run(writer({ claims: { tier: 'free' } }), PROBE)).toBe(HIDDEN)
    expect(await run(writer({ scopes: ['read'] }), PROBE)).toBe(HIDDEN)
    expect(await run(writer({ tenant: 'b' }), PROBE)).toBe(
      'TOOL_DENIED: tools.rec.delete_item exists but is not available to this caller (policy: rule "no-tenant-b")',
    )
    // And the other way round: a kept "hidden" never hides the tool from the writer.
    expect(await run(writer(), PROBE)).toMatch(/^INVALID_ARGS: /)
    expect(await run(writer())).toBe('ran')
    expect(rt.recorded().filter((c) => c.tool === 'delete_item')).toHaveLength(2)
  })

  it('a reload never reuses a verdict of the policy before it', async () => {
    const before = rt.policy
    expect(await run(writer())).toBe('ran')
    await rt.engine.reload({ config: rt.config, policy: policyFrom(DENY_DELETES) })
    try {
      const out = await rt.engine.execute(
        writer(),
        DELETE.replace('return e.code', 'return e.message'),
      )
      expect(out.result).toBe(
        'tools.rec.delete_item exists but is not available to this caller (policy: rule "deletes-off")',
      )
    } finally {
      await rt.engine.reload({ config: rt.config, policy: before })
    }
    expect(await run(writer())).toBe('ran')
  })

  it('is asked once per principal and tool, however many calls', async () => {
    const { policy, asked } = counted(rt.policy)
    expect(policy.listingIsTimeless).toBe(true)
    await rt.engine.reload({ config: rt.config, policy })
    try {
      const three = `for (let i = 0; i < 3; i++) await tools.rec.read_item({ id: String(i) })
return 'ok'`
      expect(await run(writer(), three)).toBe('ok')
      expect(await run(writer(), three)).toBe('ok')
      expect(asked.n).toBe(1)
      expect(await run(writer({ sub: 'bob' }), three)).toBe('ok')
      expect(asked.n).toBe(2)
    } finally {
      await rt.engine.reload({ config: rt.config, policy: rt.policy })
    }
  })

  it('keeps nothing for a policy whose rules read the clock (or that does not say)', async () => {
    const clocked = policyFrom(`
rules:
  - id: rec-in-this-millennium
    effect: allow
    when: tool.server == "rec" && now < timestamp("3000-01-01T00:00:00Z")
`)
    expect(clocked.listingIsTimeless).toBe(false)
    for (const { policy, asked } of [counted(clocked), counted(rt.policy, 'absent')]) {
      if (policy.listingIsTimeless === true)
        throw new Error('expected a policy that is not timeless')
      await rt.engine.reload({ config: rt.config, policy })
      try {
        const two = `await tools.rec.read_item({ id: 'a' })
await tools.rec.read_item({ id: 'b' })
return 'ok'`
        expect(await run(writer(), two)).toBe('ok')
        expect(asked.n).toBe(2)
      } finally {
        await rt.engine.reload({ config: rt.config, policy: rt.policy })
      }
    }
  })
})
