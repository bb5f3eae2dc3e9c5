/**
 * Case `per-call`: the cost of one awaited inner call. Two scripts, interleaved, identical but
 * for the loop count: 200 sequential `await tools.bench.noop({ i })` and 0. The overhead per call
 * is (p50 of 200 − p50 of 0) / 200, also given from the means.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { summarize } from '../lib/stats.js'
import { createPool, executeOk, inProcessTools } from '../lib/sluice.js'

export const title = 'per inner call overhead (200 sequential awaited calls vs 0)'

const CALLS = 200
const MANIFEST = { bench: { noop: 'noop' } }
const script = (count) => `let last: unknown = null
for (let i = 0; i < ${count}; i++) last = await tools.bench.noop({ i })
return last`

export async function run({ quick, progress }) {
  const n = quick ? 60 : 300
  const pool = await createPool()
  try {
    const { onCall, stats } = inProcessTools()
    const limits = { maxToolCalls: CALLS }
    const many = { code: script(CALLS), manifest: MANIFEST, limits, onCall }
    const none = { code: script(0), manifest: MANIFEST, limits, onCall }
    for (let i = 0; i < 10; i++) {
      await executeOk(pool, many)
      await executeOk(pool, none)
    }
    const wallMany = []
    const wallNone = []
    for (let i = 0; i < n; i++) {
      // Alternate which goes first so neither always follows the other.
      const order = i % 2 === 0 ? [many, none] : [none, many]
      for (const req of order) {
        const start = performance.now()
        await executeOk(pool, req)
        ;(req === many ? wallMany : wallNone).push(performance.now() - start)
      }
      if (i % 100 === 99) progress(`${i + 1}/${n}`)
    }
    const sMany = summarize(wallMany)
    const sNone = summarize(wallNone)
    const perCallUs = ((sMany.p50 - sNone.p50) / CALLS) * 1000
    const perCallMeanUs = ((sMany.mean - sNone.mean) / CALLS) * 1000
    return {
      metrics: [
        { label: `script with ${CALLS} calls, wall`, stats: sMany },
        { label: 'same script with 0 calls, wall', stats: sNone },
        {
          label: 'overhead per call, sandbox only: no policy, audit or span (Δp50 / 200)',
          value: `${perCallUs.toFixed(1)} µs (from means: ${perCallMeanUs.toFixed(1)} µs)`,
          target: '≤ 50 µs',
          met: perCallUs <= 50,
        },
      ],
      details: { perCallUs, perCallMeanUs, calls: CALLS, toolCallsSeen: stats.calls },
    }
  } finally {
    await pool.close()
  }
}
