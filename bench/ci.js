/**
 * The bench subset CI runs (`.ci/run`, after `npm test`): a few same-run RATIOS, compared with
 * the ones stored in `ci-baseline.json`. Absolute times on a shared CI machine mean little;
 * a ratio of two things measured interleaved in the same process moves much less, so a ratio
 * more than `maxRegression` (1.5: 50%) worse than its stored value fails the run.
 *
 * Needs only a root `npm run build` (no bench install: the reference engine is `node:vm`).
 * Only the `ratios` of the baseline gate; its `informational` ones are printed beside them.
 * `node bench/ci.js --update` rewrites the baseline with this run's ratios (commit it with the
 * change that moved them, saying why).
 *
 * @module
 */
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { summarize } from './lib/stats.js'
import { MANIFEST, SCRIPT, isExpected } from './lib/script.js'
import { createPool, executeOk, inProcessTools } from './lib/sluice.js'
import { load as loadNodeVm } from './peers/node-vm.js'

const BASELINE = new URL('./ci-baseline.json', import.meta.url)
const ROUNDS = 300
const CALLS = 100
const perCallScript = (count) => `let last: unknown = null
for (let i = 0; i < ${count}; i++) last = await tools.bench.noop({ i })
return last`

/** Samples of each named run, interleaved round by round with the order rotated. */
async function interleaved(runs, rounds) {
  const names = Object.keys(runs)
  const samples = Object.fromEntries(names.map((n) => [n, []]))
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(r + k) % names.length]
      const start = performance.now()
      await runs[name]()
      samples[name].push(performance.now() - start)
    }
  }
  return Object.fromEntries(names.map((n) => [n, summarize(samples[n])]))
}

async function measure() {
  const pool = await createPool()
  const vm = await loadNodeVm()
  try {
    const { onCall } = inProcessTools()
    const execute = { code: SCRIPT, manifest: MANIFEST, onCall }
    const limits = { maxToolCalls: CALLS }
    const many = {
      code: perCallScript(CALLS),
      manifest: { bench: { noop: 'noop' } },
      limits,
      onCall,
    }
    const none = { ...many, code: perCallScript(0) }
    const first = await executeOk(pool, execute)
    if (!isExpected(first.result)) throw new Error('sluice gave an unexpected result')
    if (!isExpected(await vm.run(SCRIPT))) throw new Error('node:vm gave an unexpected result')
    const runs = {
      sluice: () => executeOk(pool, execute),
      nodeVm: () => vm.run(SCRIPT),
      many: () => executeOk(pool, many),
      none: () => executeOk(pool, none),
    }
    await interleaved(runs, 30)
    const s = await interleaved(runs, ROUNDS)
    return {
      // Lower is better for every ratio.
      'execute p50 / node:vm p50 (same script)': s.sluice.p50 / s.nodeVm.p50,
      'execute p95 / node:vm p95 (same script)': s.sluice.p95 / s.nodeVm.p95,
      [`${CALLS} awaited calls p50 / 0 calls p50`]: s.many.p50 / s.none.p50,
    }
  } finally {
    await vm.close()
    await pool.close()
  }
}

const baseline = JSON.parse(fs.readFileSync(BASELINE, 'utf8'))
const ratios = await measure()
if (process.argv.includes('--update')) {
  const rounded = Object.fromEntries(
    Object.entries(ratios).map(([k, v]) => [k, Math.round(v * 100) / 100]),
  )
  // A ratio stays where it is (gated or informational); a new one starts informational.
  const gated = (k) => k in baseline.ratios
  const pick = (keep) => Object.fromEntries(Object.entries(rounded).filter(([k]) => keep(k)))
  const next = { ...baseline, ratios: pick(gated), informational: pick((k) => !gated(k)) }
  fs.writeFileSync(BASELINE, `${JSON.stringify(next, null, 2)}\n`)
  process.stdout.write(`bench ci: baseline updated: ${JSON.stringify(rounded)}\n`)
} else {
  let failed = false
  for (const [name, value] of Object.entries(ratios)) {
    if (!(name in baseline.ratios) && name in (baseline.informational ?? {})) {
      process.stdout.write(
        `· ${name}: ${value.toFixed(2)} (informational, not gated; last stored ${baseline.informational[name].toFixed(2)})\n`,
      )
      continue
    }
    const stored = baseline.ratios[name]
    if (stored === undefined) {
      failed = true
      process.stdout.write(`✗ ${name}: ${value.toFixed(2)}, no stored ratio (run --update)\n`)
      continue
    }
    const worse = value / stored
    const ok = worse <= baseline.maxRegression
    failed ||= !ok
    process.stdout.write(
      `${ok ? '✓' : '✗'} ${name}: ${value.toFixed(2)} (stored ${stored.toFixed(2)}, ${worse.toFixed(2)}× of it; fails above ${baseline.maxRegression}×)\n`,
    )
  }
  if (failed) {
    process.stdout.write('bench ci: a ratio regressed more than allowed\n')
    process.exitCode = 1
  }
}
