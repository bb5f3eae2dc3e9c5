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

async function loadSluice() {
  const pool = await createPool()
  const { onCall } = inProcessTools()
  return {
    id: 'sluice',
    label: 'sluice (fresh QuickJS WASM instance per run, worker pool)',
    note: '',
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
    'isolated-vm': rounds,
    'node-vm': rounds,
    'sebastianwessel-quickjs': quick ? 40 : 300,
    process: quick ? 8 : 40,
  }
  const engines = []
  const skipped = []
  for (const [id, load] of [
    ['sluice', loadSluice],
    ...PEERS.map((p) => [p, async () => (await import(`../peers/${p}.js`)).load()]),
  ]) {
    try {
      const engine = await load()
      const first = await engine.run(SCRIPT)
      if (!isExpected(first)) throw new Error(`wrong result ${JSON.stringify(first)}`)
      const warm = Math.min(30, Math.ceil(limitFor[engine.id] / 10))
      for (let i = 0; i < warm; i++) await engine.run(SCRIPT)
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
    for (const s of skipped) metrics.push({ label: s.id, skipped: s.reason })
    return { metrics, details: { skipped, engines: engines.map((e) => e.id) } }
  } finally {
    for (const e of engines) await e.close()
  }
}
