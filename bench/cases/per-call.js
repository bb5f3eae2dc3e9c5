/**
 * Case `per-call`: the cost of one awaited inner call. Two scripts, interleaved, identical but
 * for the loop count: 200 sequential `await tools.bench.noop({ i })` and 0. The overhead per call
 * is (p50 of 200 − p50 of 0) / 200, also given from the means.
 *
 * A floor row measures the same loop with no worker and no gateway: QuickJS in this thread,
 * whose host function returns a promise the loop resolves at once with a JSON answer, as the
 * worker does. What the sandbox row adds to it is the hop between the two threads (a message
 * each way and the wake-up of whichever thread slept).
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import { summarize } from '../lib/stats.js'
import { createPool, executeOk, inProcessTools } from '../lib/sluice.js'

/** µs per host call of QuickJS in this thread: the loop with 200 calls vs 0, p50 of `runs`. */
async function inThreadFloorUs(runs) {
  const [{ newQuickJSWASMModuleFromVariant }, variant] = await Promise.all([
    import('quickjs-emscripten-core'),
    import('@jitl/quickjs-wasmfile-release-sync'),
  ])
  const qjs = await newQuickJSWASMModuleFromVariant(variant.default ?? variant)
  const once = (count) => {
    const ctx = qjs.newContext()
    try {
      const pending = []
      const call = ctx.newFunction('call', () => {
        const deferred = ctx.newPromise()
        pending.push(deferred)
        return deferred.handle
      })
      ctx.setProp(ctx.global, 'call', call)
      call.dispose()
      const start = performance.now()
      const body = `for (let i = 0; i < ${count}; i++) last = JSON.parse(await call(JSON.stringify({ i })))`
      const promise = ctx.unwrapResult(
        ctx.evalCode(`(async () => { let last = null; ${body}; return last })()`),
      )
      for (;;) {
        ctx.runtime.executePendingJobs()
        const deferred = pending.shift()
        if (deferred === undefined) break
        const answer = ctx.newString('{"ok":true}')
        deferred.resolve(answer)
        answer.dispose()
        deferred.dispose()
      }
      promise.dispose()
      return performance.now() - start
    } finally {
      ctx.dispose()
    }
  }
  const many = []
  const none = []
  for (let i = 0; i < runs; i++) {
    many.push(once(CALLS))
    none.push(once(0))
  }
  return ((summarize(many).p50 - summarize(none).p50) / CALLS) * 1000
}

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
    const floorUs = await inThreadFloorUs(quick ? 30 : 100)
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
        {
          label:
            'floor: the same loop in QuickJS in this thread, no worker, no gateway (Δp50 / 200)',
          value: `${floorUs.toFixed(1)} µs (the sandbox row less this: the hop between threads, ${(perCallUs - floorUs).toFixed(1)} µs)`,
        },
      ],
      details: { perCallUs, perCallMeanUs, floorUs, calls: CALLS, toolCallsSeen: stats.calls },
    }
  } finally {
    await pool.close()
  }
}
