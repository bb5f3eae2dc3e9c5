/**
 * Case `containment`: what isolation between executions costs, and what it buys.
 *
 * - **Fuel**: the same CPU-bound guest programs on the plain QuickJS module and on the
 *   fuel-instrumented one (every loop and call counts toward a clock check), one instance each,
 *   in this process, no pool: the pure cost of the rewrite in guest compute time.
 * - **Tail beside hostile executions**: the `execute` script (3 awaited in-process calls) alone,
 *   then while 1 and 2 other executions spin CPU-bound to their 1 s deadline, resubmitted as soon
 *   as they end. With one execution per worker the benign one never waits behind them; it only
 *   shares the 2 cores.
 * - **Concurrency**: 12 executions at once, each with one 20 ms tool call (I/O-bound), wall time
 *   for the batch; the pool grows to 12 workers for it, and the RSS of those workers is reported.
 *
 * @module
 */
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { summarize } from '../lib/stats.js'
import { MANIFEST, SCRIPT } from '../lib/script.js'
import { createPool, executeOk, inProcessTools } from '../lib/sluice.js'

export const title = 'containment: fuel cost, tail beside hostile executions, concurrency'

const CPU_PROGRAMS = {
  'loop 3e6': 'let a = 0; for (let i = 0; i < 3e6; i++) a += i % 7; a',
  'objects 2e5 + JSON':
    'const o = []; for (let i = 0; i < 2e5; i++) o.push({ i, s: "x" + i }); JSON.stringify(o).length',
  'sort 2e5 with comparator':
    'const r = []; for (let i = 0; i < 2e5; i++) r.push((i * 7919) % 100003); r.sort((x, y) => x - y).length',
  'regex replace 3e5 chars': '"abc".repeat(1e5).replace(/b/g, "x").length',
}

async function quickjsModule(bytes) {
  const require = createRequire(import.meta.url)
  const core = await import(
    require.resolve('quickjs-emscripten-core', {
      paths: [new URL('../../', import.meta.url).pathname],
    })
  )
  const variantModule = await import(
    require.resolve('@jitl/quickjs-wasmfile-release-sync', {
      paths: [new URL('../../', import.meta.url).pathname],
    })
  )
  const variant = variantModule.default?.default ?? variantModule.default ?? variantModule
  const compiled = await WebAssembly.compile(bytes)
  return core.newQuickJSWASMModuleFromVariant(
    core.newVariant(variant, {
      emscriptenModule: {
        instantiateWasm(imports, onSuccess) {
          const instance = new WebAssembly.Instance(compiled, imports)
          onSuccess(instance, compiled)
          return instance.exports
        },
      },
    }),
  )
}

/** ms per run of each program on one module, median of `rounds` runs after one warm-up. */
async function timePrograms(bytes, rounds) {
  const module = await quickjsModule(bytes)
  const out = {}
  for (const [name, code] of Object.entries(CPU_PROGRAMS)) {
    const rt = module.newRuntime()
    rt.setMemoryLimit(256 * 1024 * 1024)
    const ctx = rt.newContext()
    const samples = []
    for (let i = 0; i <= rounds; i++) {
      const start = performance.now()
      // A function per run: top-level `let` would be redeclared.
      const r = ctx.evalCode(`(() => { ${code.replace(/;([^;]*)$/, '; return $1')} })()`)
      const ms = performance.now() - start
      if (r.error) throw new Error(`${name}: ${JSON.stringify(ctx.dump(r.error))}`)
      r.value.dispose()
      if (i > 0) samples.push(ms)
    }
    ctx.dispose()
    rt.dispose()
    out[name] = summarize(samples)
  }
  return out
}

async function fuelCost(quick) {
  const root = new URL('../../', import.meta.url)
  const { fuelled, quickjsWasmBytes } = await import(
    new URL('dist/src/sandbox/quickjs-module.js', root).href
  )
  const raw = quickjsWasmBytes()
  const rewriteStart = performance.now()
  const rewritten = fuelled(raw)
  const rewriteMs = performance.now() - rewriteStart
  if (!rewritten.skippedInterpreterLoop) throw new Error('the interpreter loop was not found')
  const rounds = quick ? 3 : 9
  // Interleave plain and fuelled twice so neither gets a warmer machine.
  const plainA = await timePrograms(raw, rounds)
  const fuelA = await timePrograms(rewritten.bytes, rounds)
  const plainB = await timePrograms(raw, rounds)
  const fuelB = await timePrograms(rewritten.bytes, rounds)
  const metrics = []
  for (const name of Object.keys(CPU_PROGRAMS)) {
    const plain = Math.min(plainA[name].p50, plainB[name].p50)
    const fuel = Math.min(fuelA[name].p50, fuelB[name].p50)
    metrics.push({
      label: `fuel: ${name}, guest compute p50 (fuelled / plain)`,
      value: `${(fuel / plain).toFixed(2)}×`,
      note: `${plain.toFixed(1)} ms plain, ${fuel.toFixed(1)} ms fuelled`,
    })
  }
  return {
    metrics,
    details: {
      rewriteMs,
      fuelSites: rewritten.sites,
      bytesBefore: raw.length,
      bytesAfter: rewritten.bytes.length,
    },
  }
}

async function tailBesideHostile(quick, progress) {
  const n = quick ? 200 : 1000
  const pool = await createPool({ workers: 2, maxWorkers: 4 })
  const { onCall } = inProcessTools()
  const request = { code: SCRIPT, manifest: MANIFEST, onCall }
  const metrics = []
  const results = {}
  try {
    for (let i = 0; i < 100; i++) await executeOk(pool, request)
    for (const hostile of [0, 1, 2]) {
      let stop = false
      const spinners = Array.from({ length: hostile }, async () => {
        while (!stop) {
          await pool.execute({
            code: 'for (;;) {}',
            manifest: {},
            onCall,
            limits: { timeoutMs: 1000 },
          })
        }
      })
      // Let the spinners take their workers before measuring.
      await new Promise((resolve) => setTimeout(resolve, 50))
      const wall = []
      for (let i = 0; i < n; i++) {
        const start = performance.now()
        await executeOk(pool, request)
        wall.push(performance.now() - start)
      }
      stop = true
      await Promise.all(spinners)
      const s = summarize(wall)
      results[hostile] = s
      metrics.push({
        label: `execute beside ${hostile} CPU-bound hostile execution(s), wall`,
        stats: s,
      })
      progress(`beside ${hostile} hostile: p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms`)
    }
    metrics.push({
      label: 'execute p99 beside 1 hostile / alone',
      value: `${(results[1].p99 / results[0].p99).toFixed(2)}×`,
      note: 'the hostile one takes a whole core of 2',
    })
    return { metrics, details: { poolStats: pool.stats() } }
  } finally {
    await pool.close()
  }
}

async function concurrency(quick) {
  const rounds = quick ? 5 : 20
  const pool = await createPool({ workers: 2, maxWorkers: 12 })
  const tools = inProcessTools(20)
  const request = {
    code: 'const r = await tools.bench.wait({ ms: 20 }); return 1',
    manifest: { bench: { wait: 'wait' } },
    onCall: tools.onCall,
  }
  try {
    const rssBefore = process.memoryUsage().rss
    // The first batch grows the pool from 2 to 12 workers; let the new ones finish starting.
    const firstStart = performance.now()
    await Promise.all(Array.from({ length: 12 }, () => executeOk(pool, request)))
    const firstBatchMs = performance.now() - firstStart
    while (pool.stats().starting > 0) await new Promise((resolve) => setTimeout(resolve, 50))
    for (let i = 0; i < 3; i++)
      await Promise.all(Array.from({ length: 12 }, () => executeOk(pool, request)))
    const wall = []
    for (let i = 0; i < rounds; i++) {
      const start = performance.now()
      await Promise.all(Array.from({ length: 12 }, () => executeOk(pool, request)))
      wall.push(performance.now() - start)
    }
    const stats = pool.stats()
    const rssPerWorkerMiB =
      (process.memoryUsage().rss - rssBefore) / 2 ** 20 / Math.max(1, stats.workers - 2)
    const s = summarize(wall)
    return {
      metrics: [
        {
          label: '12 concurrent executions × one 20 ms call, batch wall (pool grown)',
          stats: s,
          note: `${stats.workers} workers; ideal ≈ 20 ms`,
        },
        {
          label: 'the first such batch, growing the pool from 2 to 12 workers',
          value: `${firstBatchMs.toFixed(0)} ms`,
        },
        { label: 'RSS per extra worker', value: `${rssPerWorkerMiB.toFixed(1)} MiB` },
      ],
      details: { poolStats: stats, firstBatchMs },
    }
  } finally {
    await pool.close()
  }
}

export async function run({ quick, progress }) {
  const fuel = await fuelCost(quick)
  progress('fuel measured')
  const tail = await tailBesideHostile(quick, progress)
  const conc = await concurrency(quick)
  return {
    metrics: [...fuel.metrics, ...tail.metrics, ...conc.metrics],
    details: { fuel: fuel.details, tail: tail.details, concurrency: conc.details },
  }
}
