/**
 * Case `rss`: process RSS over many executions on one pool (workers are threads, so their heaps
 * and WASM memories are in this RSS). Every 10th execution throws in the guest, so the failure
 * path is exercised too. RSS is sampled every `every` executions right after a forced GC of the
 * main isolate (`--expose-gc`; worker isolates collect on their own). "Flat" means the
 * least-squares slope over the samples from 20% of the run on (JIT and allocator warm-up come
 * before) is ≤ 0.5 MiB per 10,000 executions.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { forceGc, slope } from '../lib/stats.js'
import { MANIFEST, SCRIPT } from '../lib/script.js'
import { createPool, inProcessTools } from '../lib/sluice.js'
import { safeStats } from './acquire.js'

export const title = 'RSS over many executions'

const MiB = 1024 * 1024
const FAILING = `const graph: unknown = await tools.memory.search_nodes({ query: 'person' })
throw new Error('planned failure after a call: ' + typeof graph)`

export async function run({ quick, progress }) {
  const target = quick ? 10_000 : 100_000
  // A time cap keeps the whole bench inside its budget on a slow or busy machine; the report
  // says how many executions actually ran.
  const maxSeconds = quick ? 20 : 300
  const every = target / 10
  const pool = await createPool()
  try {
    const { onCall } = inProcessTools()
    const ok = { code: SCRIPT, manifest: MANIFEST, onCall }
    const bad = { code: FAILING, manifest: MANIFEST, onCall }
    for (let i = 0; i < (quick ? 500 : 1000); i++) await pool.execute(ok)
    const samples = []
    const sample = (done) => {
      forceGc()
      const m = process.memoryUsage()
      samples.push({
        executions: done,
        rssMiB: m.rss / MiB,
        heapUsedMiB: m.heapUsed / MiB,
        externalMiB: m.external / MiB,
      })
    }
    sample(0)
    const started = performance.now()
    const deadline = started + maxSeconds * 1000
    let lastSampleAt = started
    let unexpected = 0
    let total = 0
    for (let i = 1; i <= target; i++) {
      const failing = i % 10 === 0
      const res = await pool.execute(failing ? bad : ok)
      if (res.ok === failing) unexpected++
      total = i
      const now = performance.now()
      const capped = now >= deadline
      // Sample every 10% of the target, or every 10% of the time cap when runs are slow.
      if (i % every === 0 || capped || now - lastSampleAt >= maxSeconds * 100) {
        sample(i)
        lastSampleAt = performance.now()
        progress(`${i}/${target}, rss ${samples.at(-1).rssMiB.toFixed(1)} MiB`)
      }
      if (capped) break
    }
    const seconds = (performance.now() - started) / 1000
    const after = samples.filter((s) => s.executions >= total * 0.2)
    const perTenK =
      slope(
        after.map((s) => s.executions),
        after.map((s) => s.rssMiB),
      ) * 10_000
    const rss = samples.map((s) => s.rssMiB)
    const conclusive = total >= target / 2 && after.length >= 4
    const fmt = (x) => `${x.toFixed(1)} MiB`
    return {
      metrics: [
        {
          label:
            `RSS over ${total.toLocaleString('en')} executions (10% failing)` +
            (total < target
              ? `, stopped by the ${maxSeconds} s cap before ${target.toLocaleString('en')}`
              : ''),
          value: `start ${fmt(rss[0])}, end ${fmt(rss.at(-1))}, max ${fmt(Math.max(...rss))}; slope ${perTenK.toFixed(2)} MiB / 10k`,
          target: 'flat (slope ≤ 0.5 MiB / 10k after warm-up)',
          // Under half the target (or fewer than 4 samples after warm-up) the slope is noise.
          met: conclusive ? perTenK <= 0.5 && unexpected === 0 : undefined,
          note: [
            `${(total / seconds).toFixed(0)} executions/s`,
            unexpected === 0 ? '' : `${unexpected} unexpected outcomes`,
            conclusive ? '' : 'inconclusive: too few executions for a slope',
          ]
            .filter(Boolean)
            .join('; '),
        },
      ],
      details: {
        target,
        executions: total,
        maxSeconds,
        samples,
        slopeMiBPer10k: perTenK,
        seconds,
        unexpected,
        poolStats: safeStats(pool),
      },
    }
  } finally {
    await pool.close()
  }
}
