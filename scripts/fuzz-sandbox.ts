/**
 * Long fuzz run of the sandbox's containment (the CI test runs 40 programs with one seed):
 *
 *   npm run fuzz -- --runs 2000 [--seed 123]
 *
 * Prints each failing program with the contract it broke (shrunk to a minimal one by
 * fast-check) and exits 1; exits 0 when every program kept the contract.
 */
import { parseArgs } from 'node:util'
import fc from 'fast-check'
import { createPool, run } from '../test/sandbox/harness.js'
import { envelopeProblems, hostileProgram } from '../test/sandbox/hostile.js'

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '500' }, seed: { type: 'string' } },
})
const runs = Number(values.runs)
const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed)
const LIMITS = { timeoutMs: 300, memoryBytes: 32 * 1024 * 1024, maxOutputBytes: 64 * 1024 }

const pool = await createPool({ workers: 2, maxWorkers: 4 })
let done = 0
try {
  await fc.assert(
    fc.asyncProperty(hostileProgram, async (code) => {
      const [outcome, neighbour] = await Promise.all([
        run(pool, code, LIMITS),
        run(pool, 'const r: any = await tools.s.echo({ n: 21 }); return r.n * 2'),
      ])
      const problems = envelopeProblems(outcome, code, LIMITS.maxOutputBytes)
      if (neighbour.result !== 42)
        problems.push(`the neighbour got ${JSON.stringify(neighbour.error ?? neighbour.result)}`)
      if (++done % 100 === 0) process.stderr.write(`${done} programs\n`)
      if (problems.length > 0) throw new Error(problems.join('; '))
    }),
    { seed, numRuns: runs },
  )
  process.stdout.write(
    `${runs} hostile programs kept the contract (seed ${seed}); pool: ${JSON.stringify(pool.stats())}\n`,
  )
} catch (e) {
  process.stdout.write(`seed ${seed}: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exitCode = 1
} finally {
  await pool.close()
}
