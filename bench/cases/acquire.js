/**
 * Case `acquire`: how long a request waits for a ready, fresh sandbox from the pool. The number
 * is the sandbox's own `timings.queueMs` (request accepted → instance handed over) for an empty
 * script (`return 1`), in two regimes interleaved: after a 5 ms pause (the pool had time to
 * refill: the prewarmed path) and back to back (refill competes with the request). The empty
 * script's whole wall time is reported beside it as the floor of one execution.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { summarize, sleep } from '../lib/stats.js'
import { createPool, executeOk, inProcessTools } from '../lib/sluice.js'

export const title = 'sandbox acquire (fresh instance from the pool)'

export async function run({ quick, progress }) {
  const n = quick ? 200 : 1000
  const pool = await createPool()
  try {
    const { onCall } = inProcessTools()
    const request = { code: 'return 1', manifest: {}, onCall }
    for (let i = 0; i < (quick ? 30 : 100); i++) await executeOk(pool, request)
    const idleQueue = []
    const busyQueue = []
    const wall = []
    for (let i = 0; i < n; i++) {
      await sleep(5)
      const start = performance.now()
      const idle = await executeOk(pool, request)
      wall.push(performance.now() - start)
      idleQueue.push(idle.timings.queueMs)
      const busy = await executeOk(pool, request)
      busyQueue.push(busy.timings.queueMs)
      if (i % 200 === 199) progress(`${i + 1}/${n}`)
    }
    const idle = summarize(idleQueue)
    return {
      metrics: [
        {
          label: 'queueMs, pool refilled (5 ms idle before)',
          stats: idle,
          target: 'p50 ≤ 0.3 ms',
          met: idle.p50 <= 0.3,
        },
        { label: 'queueMs, back to back', stats: summarize(busyQueue) },
        { label: 'empty script (`return 1`), wall', stats: summarize(wall) },
      ],
      details: { source: 'timings.queueMs of `return 1`', poolStats: safeStats(pool) },
    }
  } finally {
    await pool.close()
  }
}

export function safeStats(pool) {
  try {
    return pool.stats()
  } catch (error) {
    return { error: String(error) }
  }
}
