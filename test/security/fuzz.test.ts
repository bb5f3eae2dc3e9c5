/**
 * Property-based containment: programs drawn from a grammar of hostile snippets (prototype
 * overrides, exotic throws, deep nesting, huge strings, timers and floating work, stuck
 * builtins) each end in an outcome that obeys the envelope contract, beside a neighbour that
 * succeeds, in a pool that stays up. A fixed seed runs here; `npm run fuzz -- --runs N` runs
 * longer (scripts/fuzz-sandbox.ts).
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SandboxPool } from '../../src/sandbox/index.js'
import { createPool, expectHealthy, run } from '../sandbox/harness.js'
import { envelopeProblems, hostileProgram } from '../sandbox/hostile.js'

const LIMITS = { timeoutMs: 300, memoryBytes: 32 * 1024 * 1024, maxOutputBytes: 64 * 1024 }
let pool: SandboxPool

beforeAll(async () => {
  pool = await createPool({ workers: 2, maxWorkers: 4 })
})

afterAll(async () => {
  await pool.close()
})

describe('hostile programs (fast-check, fixed seed)', () => {
  it('obey the envelope contract, and a neighbour beside each succeeds', async () => {
    await fc.assert(
      fc.asyncProperty(hostileProgram, async (code) => {
        const [outcome, neighbour] = await Promise.all([
          run(pool, code, LIMITS),
          run(pool, 'const r: any = await tools.s.echo({ n: 21 }); return r.n * 2'),
        ])
        expect(envelopeProblems(outcome, code, LIMITS.maxOutputBytes)).toEqual([])
        expect(neighbour.result).toBe(42)
      }),
      { seed: 20261204, numRuns: 40, endOnFailure: true },
    )
    await expectHealthy(pool)
  })
})
