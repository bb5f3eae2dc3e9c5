/**
 * Case `peers`: the same script (`lib/script.js`: transpile with sucrase + 3 awaited tool calls +
 * result) in sluice and each peer, in the same run, interleaved round-robin with the order rotated
 * each round so machine noise hits all engines alike. Slow engines run in fewer rounds. Each
 * engine's result is checked before timing. A peer that cannot load is reported as skipped.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { summarize } from '../lib/stats.js'
import { MANIFEST, SCRIPT, isExpected } from '../lib/script.js'
import { createPool, executeOk, inProcessTools } from '../lib/sluice.js'

export const title = 'peers, same script, same run'

const PEERS = ['isolated-vm', 'quickjs-sebastian', 'node-vm', 'process']

/**
 * How each engine is set up, stated in the report: sluice's pool builds each run's fresh WASM
 * instance ahead of time, off the clock (`prewarm` 1, its default); `sluice-cold` builds it on
 * the clock (`prewarm` 0), as the per-run peers build their isolate, context or process. The
 * even pairs are sluice / isolated-vm-prebuilt and sluice-cold / isolated-vm.
 */
const PAIRS = [
  ['sluice', 'isolated-vm-prebuilt', 'both prebuild off the clock'],
  ['sluice-cold', 'isolated-vm', 'neither prebuilds'],
]

async function loadSluice(prewarm = 1) {
  const pool = await createPool({ prewarm })
  const { onCall } = inProcessTools()
  const cold = prewarm === 0
  return {
    id: cold ? 'sluice-cold' : 'sluice',
    label: cold
      ? 'sluice, nothing prebuilt (prewarm 0: the fresh WASM instance is built on the clock)'
      : 'sluice (fresh QuickJS WASM instance per run, worker pool)',
    note: cold ? '' : 'prebuilt: the next instance is built off the clock (prewarm 1, the default)',
    async run(ts) {
      const res = await executeOk(pool, { code: ts, manifest: MANIFEST, onCall })
      return res.result
    },
    close: () => pool.close(),
  }
}

export async function run({ quick, progress }) {
  const rounds = quick ? 150 : 1000
  const limitFor = {
    sluice: rounds,
    'sluice-cold': rounds,
    'isolated-vm': rounds,
    'isolated-vm-prebuilt': rounds,
    'node-vm': rounds,
    'sebastianwessel-quickjs': quick ? 40 : 300,
    process: quick ? 8 : 40,
  }
  const engines = []
  const skipped = []
  for (const [id, load] of [
    ['sluice', () => loadSluice(1)],
    ['sluice-cold', () => loadSluice(0)],
    ...PEERS.map((p) => [p, async () => (await import(`../peers/${p}.js`)).load()]),
    ['isolated-vm-prebuilt', async () => (await import('../peers/isolated-vm.js')).loadPrebuilt()],
  ]) {
    try {
      const engine = await load()
      const first = await engine.run(SCRIPT)
      await engine.prepare?.()
      if (!isExpected(first)) throw new Error(`wrong result ${JSON.stringify(first)}`)
      const warm = Math.min(30, Math.ceil(limitFor[engine.id] / 10))
      for (let i = 0; i < warm; i++) {
        await engine.run(SCRIPT)
        await engine.prepare?.()
      }
      engines.push(engine)
    } catch (error) {
      skipped.push({ id, reason: String(error?.message ?? error).split('\n')[0] })
    }
  }
  try {
    const samples = new Map(engines.map((e) => [e.id, []]))
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < engines.length; k++) {
        const engine = engines[(r + k) % engines.length]
        const mine = samples.get(engine.id)
        if (mine.length >= limitFor[engine.id]) continue
        const start = performance.now()
        await engine.run(SCRIPT)
        mine.push(performance.now() - start)
        await engine.prepare?.()
      }
      if (r % 250 === 249) progress(`round ${r + 1}/${rounds}`)
    }
    const base = samples.has('sluice') ? summarize(samples.get('sluice')).p50 : undefined
    const metrics = engines.map((e) => {
      const stats = summarize(samples.get(e.id))
      return {
        label: e.label,
        stats,
        ratio: base === undefined ? undefined : stats.p50 / base,
        note: e.note || undefined,
      }
    })
    for (const [a, b, how] of PAIRS) {
      if (!samples.has(a) || !samples.has(b)) continue
      const sa = summarize(samples.get(a))
      const sb = summarize(samples.get(b))
      const p50 = sb.p50 / sa.p50
      const p99 = sb.p99 / sa.p99
      metrics.push({
        label: `${b} / ${a} (${how})`,
        value: `p50 ${p50.toFixed(2)}×, p99 ${p99.toFixed(2)}×`,
        target: '≥ 5× at p50 and p99',
        met: p50 >= 5 && p99 >= 5,
      })
    }
    for (const s of skipped) metrics.push({ label: s.id, skipped: s.reason })
    return { metrics, details: { skipped, engines: engines.map((e) => e.id) } }
  } finally {
    for (const e of engines) await e.close()
  }
}
