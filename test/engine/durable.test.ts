/**
 * The durable-approval store protocol (src/engine/durable.ts) at its edges: the journal size
 * limit at N and N+1, a store that fails, and tokens that are not sluice's. The whole flow runs
 * end to end in test/e2e/approval-stateless.test.ts.
 */
import { describe, expect, it } from 'vitest'
import {
  newApprovalToken,
  saveRun,
  takeRun,
  tokenExpiry,
  type SuspendedRun,
} from '../../src/engine/durable.js'
import { SluiceError } from '../../src/errors.js'
import { MemoryStore, type SharedStore } from '../../src/store/index.js'

const run = (expiresAt = Date.now() + 60_000): SuspendedRun => ({
  v: 1,
  executionId: 'e-1',
  codeHash: 'sha256:code',
  seed: [1, 2, 3, 4],
  expiresAt,
  pending: {
    server: 'rec',
    tool: 'pay',
    argsHash: 'sha256:args',
    index: 1,
    request: { tool: 'rec.pay', argsSummary: '{}', ruleId: 'r', reason: 'why' },
  },
  journal: [
    {
      server: 'rec',
      tool: 'read_item',
      argsHash: 'sha256:a',
      index: 0,
      outcome: { ok: true, value: { text: 'é'.repeat(100) } },
      record: { tool: 'rec.read_item', ok: true, ms: 1, decision: 'allow' },
    },
  ],
  budget: [],
})

const down = async (): Promise<never> => {
  throw new SluiceError('STORE_UNAVAILABLE', 'the Redis store at redis://h:1/ did not answer: x')
}
const failing: SharedStore = {
  kind: 'redis',
  takeToken: () => ({ ok: true }),
  put: down,
  take: down,
  get: down,
  swap: down,
  hold: down,
  isHeld: down,
  release: down,
  publish: down,
  subscribe: down,
  close: async () => {},
}

describe('saveRun / takeRun', () => {
  it('keeps a run of exactly approvalJournalMaxBytes; one byte more is APPROVAL_DENIED', async () => {
    const store = new MemoryStore()
    const bytes = Buffer.byteLength(JSON.stringify(run()))
    const kept = await saveRun(store, 'alice', run(), { ttlMs: 60_000, maxBytes: bytes })
    expect(kept.ok).toBe(true)
    const over = await saveRun(store, 'alice', run(), { ttlMs: 60_000, maxBytes: bytes - 1 })
    expect(over).toEqual({
      ok: false,
      error: {
        code: 'APPROVAL_DENIED',
        message: `rec.pay needs approval, but the 1 calls before it returned ${bytes} bytes to keep while the human decides, over gateway.approvalJournalMaxBytes (${bytes - 1}); the approval was not asked. Fetch less before the call that needs approval, or make it in its own execution`,
      },
    })
  })

  it('takes a run once, only for the principal that saved it', async () => {
    const store = new MemoryStore()
    const kept = await saveRun(store, 'alice', run(), { ttlMs: 60_000, maxBytes: 1e6 })
    if (!kept.ok) throw new Error('not kept')
    const bob = await takeRun(store, 'bob', kept.token, 'sha256:code', 60_000)
    expect(bob).toMatchObject({ ok: false, error: { code: 'APPROVAL_DENIED' } })
    expect(bob.ok === false && bob.error.message).toContain('no longer pending')
    const alice = await takeRun(store, 'alice', kept.token, 'sha256:code', 60_000)
    expect(alice).toMatchObject({ ok: true, run: { executionId: 'e-1' } })
    const again = await takeRun(store, 'alice', kept.token, 'sha256:code', 60_000)
    expect(again.ok === false && again.error.message).toContain('no longer pending')
  })

  it('a store that fails is OVERLOADED with a retry, on save and on take', async () => {
    const saved = await saveRun(failing, 'alice', run(), { ttlMs: 60_000, maxBytes: 1e6 })
    expect(saved).toEqual({
      ok: false,
      error: {
        code: 'OVERLOADED',
        message:
          'rec.pay needs approval, but the execution could not be kept while the human decides: the Redis store at redis://h:1/ did not answer: x. The calls before it ran and run again on a retry',
        retryAfterMs: 1000,
      },
    })
    const token = newApprovalToken(Date.now() + 60_000)
    expect(await takeRun(failing, 'alice', token, 'sha256:code', 60_000)).toEqual({
      ok: false,
      error: {
        code: 'OVERLOADED',
        message:
          'the approval cannot be resumed now: the Redis store at redis://h:1/ did not answer: x; send the answer again',
        retryAfterMs: 1000,
      },
    })
  })

  it('tokens: 144 random bits after the expiry; anything else is not one of ours', () => {
    const at = Date.now() + 5_000
    const a = newApprovalToken(at)
    expect(a).not.toBe(newApprovalToken(at))
    expect(tokenExpiry(a)).toBe(at)
    for (const bad of ['', 'x', `${at.toString(36)}.short`, `${at.toString(36)}.${'A'.repeat(25)}`])
      expect(tokenExpiry(bad)).toBeUndefined()
  })
})
