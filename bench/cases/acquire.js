/**
 * Case `acquire`: how long a request waits before a ready, fresh sandbox is in hand. The target
 * row is the sandbox's own `timings.acquireMs` (the request's arrival in the worker → a ready
 * instance in hand: taking a prewarmed one, or creating one when none is ready). Beside it,
 * `timings.queueMs` (waiting on the main thread for a worker) and the upper bound
 * `totalMs − transpileMs − runMs` (queue + both message hops + acquire). Measured for an empty
 * script (`return 1`) in two regimes, interleaved: after the pool reports a ready instance
 * (`stats().ready ≥ 1`, the prewarmed path) and back to back (clean-up competes with the request).
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { summarize, sleep } from '../lib/stats.js'
import { createPool, executeOk, inProcessTools } from '../lib/sluice.js'

export const title = 'sandbox acquire (fresh instance from the pool)'

const handOver = (t) => t.totalMs - t.transpileMs - t.runMs

export async function run({ quick, progress }) {
  const n = quick ? 200 : 1000
  const pool = await createPool()
  try {
    const { onCall } = inProcessTools()
    const request = { code: 'return 1', manifest: {}, onCall }
    for (let i = 0; i < (quick ? 30 : 100); i++) await executeOk(pool, request)
    const idle = { acquire: [], handOver: [], queue: [], wall: [] }
    const busy = { acquire: [], handOver: [], queue: [] }
    let notReady = 0
    for (let i = 0; i < n; i++) {
      if (!(await waitReady(pool, 100))) notReady++
      const start = performance.now()
      const a = await executeOk(pool, request)
      idle.wall.push(performance.now() - start)
      idle.acquire.push(a.timings.acquireMs ?? Number.NaN)
      idle.handOver.push(handOver(a.timings))
      idle.queue.push(a.timings.queueMs)
      const b = await executeOk(pool, request)
      busy.acquire.push(b.timings.acquireMs ?? Number.NaN)
      busy.handOver.push(handOver(b.timings))
      busy.queue.push(b.timings.queueMs)
      if (i % 200 === 199) progress(`${i + 1}/${n}`)
    }
    const s = summarize(idle.acquire)
    const handOverIdle = summarize(idle.handOver)
    return {
      metrics: [
        {
          label: 'timings.acquireMs, instance ready',
          stats: s,
          target: 'p50 ≤ 0.3 ms',
          met: s.p50 <= 0.3,
          note:
            notReady === 0 ? undefined : `${notReady} runs found no ready instance within 100 ms`,
        },
        { label: '  timings.queueMs, instance ready', stats: summarize(idle.queue) },
        {
          label: '  total − transpile − run (queue + hops + acquire), instance ready',
          stats: handOverIdle,
          // Issue 14: the hand-over as the engine sees it, both message hops included.
          target: 'p50 ≤ 0.3 ms (engine side)',
          met: handOverIdle.p50 <= 0.3,
        },
        { label: 'timings.acquireMs, back to back', stats: summarize(busy.acquire) },
        { label: '  timings.queueMs, back to back', stats: summarize(busy.queue) },
        { label: '  total − transpile − run, back to back', stats: summarize(busy.handOver) },
        { label: 'empty script (`return 1`), wall', stats: summarize(idle.wall) },
      ],
      details: {
        source: 'timings of `return 1`: acquireMs, queueMs, and totalMs − transpileMs − runMs',
        notReady,
        poolStats: safeStats(pool),
      },
    }
  } finally {
    await pool.close()
  }
}

/** Polls `stats().ready` until an instance is prewarmed; false if none appears in `maxMs`. */
async function waitReady(pool, maxMs) {
  const until = performance.now() + maxMs
  for (;;) {
    if ((safeStats(pool).ready ?? 1) >= 1) return true
    if (performance.now() >= until) return false
    await sleep(1)
  }
}

export function safeStats(pool) {
  try {
    return pool.stats()
  } catch (error) {
    return { error: String(error) }
  }
}
