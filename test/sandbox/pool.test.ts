/**
 * SandboxPool behaviour: the guest API, results and errors, logs, tool calls, every limit at N
 * and N+1, cancellation, and the isolation of executions from each other.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { DEFAULT_LIMITS } from '../../src/config/index.js'
import { SANDBOX_DEFAULT_LIMITS, type SandboxPool } from '../../src/sandbox/index.js'
import {
  createPool,
  expectHealthy,
  expectNoHostDetail,
  MANIFEST,
  recorder,
  run,
} from './harness.js'

let pool: SandboxPool

beforeAll(async () => {
  pool = await createPool()
})

afterAll(async () => {
  await pool.close()
})

describe('SandboxPool results', () => {
  it('uses a final expression statement, or return, as the result', async () => {
    expect((await run(pool, 'const x: number = 2\nx * 21')).result).toBe(42)
    expect((await run(pool, 'if (true) { return { a: [1, "b", null] } }\n7')).result).toEqual({
      a: [1, 'b', null],
    })
    expect((await run(pool, 'await Promise.resolve(3)')).result).toBe(3)
  })

  it('gives no result for undefined, functions and symbols (as JSON does)', async () => {
    for (const code of ['let a = 1', 'undefined', '() => 1', 'Symbol("s")']) {
      const outcome = await run(pool, code)
      expect(outcome.ok).toBe(true)
      expect('result' in outcome).toBe(false)
    }
    expect((await run(pool, '({ f() {}, s: Symbol("x"), n: 1 })')).result).toEqual({ n: 1 })
  })

  it('refuses a BigInt or a cycle in the result with RUNTIME_ERROR and a clear message', async () => {
    const big = await run(pool, '10n')
    expect(big.error?.code).toBe('RUNTIME_ERROR')
    expect(big.error?.message).toBe(
      'the result is not JSON-serialisable: a BigInt at result (convert it with String())',
    )
    const cycle = await run(pool, 'const o: any = {}; o.self = o; o')
    expect(cycle.error?.code).toBe('RUNTIME_ERROR')
    expect(cycle.error?.message).toBe('the result is not JSON-serialisable: a cycle at result.self')
  })

  it('reports a syntax error at its line and column in the model source', async () => {
    const outcome = await run(pool, 'const a = 1\nconst b = (a +;\n')
    expect(outcome.ok).toBe(false)
    expect(outcome.error).toMatchObject({ code: 'SYNTAX_ERROR', line: 2 })
    expect(outcome.instanceId).toBe('')
  })

  it('reports a runtime error at the throwing frame in the model source', async () => {
    const outcome = await run(
      pool,
      'const a: { b?: { c: number } } = {}\n\nfunction f(x: any) {\n  return x.b.c\n}\nf(a)',
    )
    expect(outcome.error).toEqual({
      code: 'RUNTIME_ERROR',
      message: "TypeError: cannot read property 'c' of undefined",
      line: 4,
      column: 13,
    })
    expectNoHostDetail(outcome)
  })

  it('carries the code of an uncaught tool failure', async () => {
    const outcome = await run(pool, 'const x = 1\nawait tools.s.fail({})')
    expect(outcome.error).toEqual({
      code: 'TOOL_ERROR',
      message: 'the upstream reported an error',
      line: 2,
      column: 19,
    })
  })

  it('formats console output: strings as is, values as JSON, warn and error prefixed', async () => {
    const outcome = await run(
      pool,
      'console.log("a", 1, { b: [2] }); console.info("i"); console.debug(undefined); console.warn("w"); console.error(new TypeError("t"))',
    )
    expect(outcome.logs).toEqual([
      'a 1 {"b":[2]}',
      'i',
      'undefined',
      '[warn] w',
      '[error] TypeError: t',
    ])
  })

  it('keeps logs written before a failure', async () => {
    const outcome = await run(pool, 'console.log("before"); throw new Error("x")')
    expect(outcome.logs).toEqual(['before'])
    expect(outcome.error?.message).toBe('Error: x')
  })
})

describe('SandboxPool tool calls', () => {
  it('calls tools by identifier and by original spelling, with the upstream name', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      'const a = await tools.s.get_sum({ x: 1 }); const b = await tools.s["get-sum"]({ x: 2 }); const c = await tools.my_server.ping(); const d = await tools["my-server"].ping({}); [a, b, c, d]',
      {},
      rec,
    )
    expect(outcome.result).toEqual([{ x: 1 }, { x: 2 }, {}, {}])
    expect(rec.calls.map((c) => [c.server, c.tool, c.index])).toEqual([
      ['s', 'get-sum', 0],
      ['s', 'get-sum', 1],
      ['my-server', 'ping', 2],
      ['my-server', 'ping', 3],
    ])
    expect(rec.calls[0]!.argsBytes).toBe(7)
  })

  it('asks the host about a name that is not in the manifest: the host alone decides', async () => {
    // Only the host knows whether the name is a tool policy hides from this caller (TOOL_DENIED)
    // or no tool at all (UNKNOWN_TOOL); the prelude answers neither itself.
    const rec = recorder({ nope: () => 'asked' })
    const outcome = await run(pool, 'return await tools.s.nope({ a: 1 })', {}, rec)
    expect(outcome.result).toBe('asked')
    const server = await run(pool, 'return await tools.ghost.x()', {}, rec)
    expect(server.result).toEqual({})
    expect(rec.calls.map((c) => [c.server, c.tool, c.args])).toEqual([
      ['s', 'nope', { a: 1 }],
      ['ghost', 'x', {}],
    ])
  })

  it('runs calls in parallel under Promise.all', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      'await Promise.all([1, 2, 3, 4].map(() => tools.s.slow({ ms: 40 })))',
      {},
      rec,
    )
    expect(outcome.ok).toBe(true)
    expect(rec.maxInFlight).toBe(4)
  })

  it('gives the guest an Error with only code and message for a failed call', async () => {
    const outcome = await run(
      pool,
      'try { await tools.s.fail({}) } catch (e: any) { return { names: Object.getOwnPropertyNames(e).sort(), isError: e instanceof Error, stack: e.stack } }',
    )
    const { names, isError, stack } = outcome.result as {
      names: string[]
      isError: boolean
      stack: string
    }
    expect(isError).toBe(true)
    // QuickJS adds a stack when the rejection is thrown into the awaiting function: only model frames.
    expect(names.filter((n) => n !== 'stack')).toEqual(['code', 'message'])
    expect(stack).toMatch(/^ {4}at <anonymous> \(model\.ts:1:\d+\)\n$/)
  })

  it('turns a throwing host callback into INTERNAL with a fixed message', async () => {
    const outcome = await run(pool, 'await tools.s.boom({})')
    expect(outcome.error).toMatchObject({
      code: 'INTERNAL',
      message: 'the tool call s.boom failed in the host',
    })
    expectNoHostDetail(outcome)
  })

  it('finishes with un-awaited calls pending and aborts them on the host', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      'tools.s.slow({ ms: 5000 }); tools.s.slow({ ms: 5000 }); "done"',
      {},
      rec,
    )
    expect(outcome.result).toBe('done')
    await expect.poll(() => rec.signals.length).toBe(2)
    await expect.poll(() => rec.signals.every((s) => s.aborted)).toBe(true)
    await expectHealthy(pool)
  })
})

describe('SandboxPool limits (N and N+1)', () => {
  it('maxSourceBytes', async () => {
    const at = await run(pool, '1' + ' '.repeat(99), { maxSourceBytes: 100 })
    expect(at.result).toBe(1)
    const over = await run(pool, '1' + ' '.repeat(100), { maxSourceBytes: 100 })
    expect(over.error).toEqual({
      code: 'SOURCE_LIMIT',
      message: 'the code is 101 bytes, over the limit of 100',
    })
  })

  it('maxToolCalls: call N+1 rejects with CALL_LIMIT and never reaches the host', async () => {
    const code = (n: number) => `let i = 0; for (; i < ${n}; i++) await tools.s.echo({ i }); i`
    const rec = recorder()
    expect((await run(pool, code(3), { maxToolCalls: 3 }, rec)).result).toBe(3)
    const rec2 = recorder()
    const over = await run(pool, code(4), { maxToolCalls: 3 }, rec2)
    expect(over.error).toMatchObject({
      code: 'CALL_LIMIT',
      message: 'more than 3 tool calls in one execution',
    })
    expect(rec2.calls).toHaveLength(3)
  })

  it('maxConcurrentCalls: excess calls are queued, never more than N in flight', async () => {
    const code =
      'const r = await Promise.all(Array.from({ length: 7 }, () => tools.s.slow({ ms: 15 }))); r.length'
    const rec = recorder()
    expect((await run(pool, code, { maxConcurrentCalls: 3 }, rec)).result).toBe(7)
    expect(rec.maxInFlight).toBe(3)
    const rec4 = recorder()
    expect((await run(pool, code, { maxConcurrentCalls: 4 }, rec4)).result).toBe(7)
    expect(rec4.maxInFlight).toBe(4)
  })

  it('maxArgsBytes: INVALID_ARGS before the host callback', async () => {
    // {"s":"…"} is 8 bytes plus the string.
    const rec = recorder()
    expect(
      (await run(pool, 'await tools.s.echo({ s: "x".repeat(92) }); 1', { maxArgsBytes: 100 }, rec))
        .result,
    ).toBe(1)
    expect(rec.calls[0]!.argsBytes).toBe(100)
    const rec2 = recorder()
    const over = await run(
      pool,
      'await tools.s.echo({ s: "x".repeat(93) })',
      { maxArgsBytes: 100 },
      rec2,
    )
    expect(over.error).toMatchObject({
      code: 'INVALID_ARGS',
      message: 'arguments of s.echo are 101 bytes, over the limit of 100',
    })
    expect(rec2.calls).toHaveLength(0)
  })

  it('maxArgsDepth: INVALID_ARGS before the host callback', async () => {
    const nest = (depth: number) =>
      `let a: any = 0; for (let i = 0; i < ${depth - 1}; i++) a = [a]; await tools.s.echo({ a }); 1`
    const rec = recorder()
    expect((await run(pool, nest(5), { maxArgsDepth: 5 }, rec)).result).toBe(1)
    const over = await run(pool, nest(6), { maxArgsDepth: 5 }, rec)
    expect(over.error).toMatchObject({
      code: 'INVALID_ARGS',
      message: 'arguments of s.echo are nested deeper than 5 levels',
    })
    expect(rec.calls).toHaveLength(1)
  })

  it('maxResultBytes: a larger tool result rejects that call with OUTPUT_LIMIT', async () => {
    const rec = recorder({ big: (c) => 'x'.repeat((c.args as { n: number }).n) })
    // A string result of n characters is n + 2 bytes of JSON.
    expect(
      (await run(pool, '(await tools.s.big({ n: 98 })).length', { maxResultBytes: 100 }, rec))
        .result,
    ).toBe(98)
    const over = await run(
      pool,
      'try { await tools.s.big({ n: 99 }) } catch (e: any) { return [e.code, e.message] }',
      { maxResultBytes: 100 },
      rec,
    )
    expect(over.result).toEqual([
      'OUTPUT_LIMIT',
      'the result of s.big is 101 bytes, over the limit of 100',
    ])
  })

  it('maxOutputBytes: the serialised result of the execution', async () => {
    expect((await run(pool, '"é".repeat(49)', { maxOutputBytes: 100 })).result).toBe('é'.repeat(49))
    // 52 characters, 101 bytes: the host measures bytes, whatever the guest counted.
    const over = await run(pool, '"é".repeat(49) + "x"', { maxOutputBytes: 100 })
    expect(over.error).toEqual({
      code: 'OUTPUT_LIMIT',
      message: 'the result is 101 bytes once serialised, over the limit of 100',
    })
    // Far over the limit, the guest stops building the text early.
    const far = await run(pool, '"x".repeat(5000)', { maxOutputBytes: 100 })
    expect(far.error).toEqual({
      code: 'OUTPUT_LIMIT',
      message: 'the result is larger than 100 bytes once serialised',
    })
  })

  it('maxLogBytes: logs are truncated with a marker, never an error', async () => {
    const at = await run(pool, 'console.log("x".repeat(60)); console.log("y".repeat(40)); 1', {
      maxLogBytes: 100,
    })
    expect(at.logs).toEqual(['x'.repeat(60), 'y'.repeat(40)])
    const over = await run(
      pool,
      'console.log("x".repeat(60)); console.log("y".repeat(41)); console.log("z"); 1',
      { maxLogBytes: 100 },
    )
    expect(over.ok).toBe(true)
    expect(over.logs).toEqual(['x'.repeat(60), '[logs truncated: 42 bytes dropped]'])
  })

  it('timeoutMs: a slow call within the budget succeeds, a stalled one times out', async () => {
    expect(
      (await run(pool, '(await tools.s.slow({ ms: 30 })).waited', { timeoutMs: 2000 })).result,
    ).toBe(30)
    const over = await run(pool, 'await tools.s.slow({ ms: 3000 })', { timeoutMs: 300 })
    expect(over.error).toEqual({ code: 'TIMEOUT', message: 'the execution ran longer than 300 ms' })
  })

  it('memoryBytes: an allocation under the limit works, over it fails with MEMORY_LIMIT', async () => {
    const code = 'const a = new Uint8Array(6 * 1024 * 1024); a.length'
    expect((await run(pool, code, { memoryBytes: 16 * 1024 * 1024 })).result).toBe(6 * 1024 * 1024)
    const over = await run(pool, code, { memoryBytes: 4 * 1024 * 1024 })
    expect(over.error?.code).toBe('MEMORY_LIMIT')
    await expectHealthy(pool)
  })

  it('stackBytes: recursion that fits works, deeper fails with STACK_LIMIT', async () => {
    const code = 'function f(n: number): number { return n === 0 ? 0 : 1 + f(n - 1) }\nf(500)'
    expect((await run(pool, code, { stackBytes: 1024 * 1024 })).result).toBe(500)
    const over = await run(pool, code, { stackBytes: 64 * 1024 })
    expect(over.error).toMatchObject({ code: 'STACK_LIMIT', line: 1 })
  })
})

describe('SandboxPool lifecycle', () => {
  it('cancels an execution when its signal aborts', async () => {
    const controller = new AbortController()
    const rec = recorder()
    const pending = run(pool, 'await tools.s.slow({ ms: 5000 })', {}, rec, {
      signal: controller.signal,
    })
    await expect.poll(() => rec.calls.length).toBe(1)
    controller.abort()
    const outcome = await pending
    expect(outcome.error).toEqual({ code: 'CANCELLED', message: 'the execution was cancelled' })
    expect(rec.signals[0]!.aborted).toBe(true)
    await expectHealthy(pool)
  })

  it('runs every execution in its own WASM instance; globals never carry over', async () => {
    const first = await run(
      pool,
      '(globalThis as any).leak = "from run 1"; (tools as any).extra = 1; 1',
    )
    const second = await run(pool, 'typeof (globalThis as any).leak')
    expect(second.result).toBe('undefined')
    expect(first.instanceId).not.toBe('')
    expect(second.instanceId).not.toBe(first.instanceId)
  })

  it('restates the kernel default limits exactly (it does not import the config at run time)', () => {
    for (const [key, value] of Object.entries(SANDBOX_DEFAULT_LIMITS)) {
      expect([key, value]).toEqual([key, DEFAULT_LIMITS[key as keyof typeof DEFAULT_LIMITS]])
    }
  })

  it('reports how long the worker took to hand over an instance, within the total', async () => {
    // Code not seen before, so that transpiling takes time and must not be counted twice.
    const outcome = await run(pool, `const fresh${Date.now()} = 1; return 1`)
    const t = outcome.timings
    expect(Object.keys(t).sort()).toEqual([
      'acquireMs',
      'queueMs',
      'runMs',
      'totalMs',
      'transpileMs',
    ])
    expect(t.acquireMs).toBeGreaterThanOrEqual(0)
    expect(t.queueMs + t.acquireMs + t.transpileMs + t.runMs).toBeLessThanOrEqual(t.totalMs)
  })

  it('counts the busy workers (the word a waiting worker reads before it spins) up and down', async () => {
    const two = await createPool({ workers: 2, maxWorkers: 2 })
    try {
      const seen: number[] = []
      let release: () => void = () => undefined
      const held = new Promise<void>((resolve) => {
        release = resolve
      })
      const rec = recorder({
        echo: (call) => {
          seen.push(two.stats().busy)
          return call.args
        },
        slow: async () => {
          seen.push(two.stats().busy)
          await held
          return 1
        },
      })
      const first = run(two, 'return await tools.s.slow({})', {}, rec)
      await vi.waitFor(() => expect(seen).toEqual([1]))
      const second = await run(two, 'return await tools.s.echo({ n: 2 })', {}, rec)
      expect(second.result).toEqual({ n: 2 })
      expect(seen).toEqual([1, 2])
      expect(two.stats().busy).toBe(1)
      release()
      expect((await first).result).toBe(1)
      expect(two.stats().busy).toBe(0)
      // An execution that ends by its limit gives its worker back too.
      const timedOut = await run(two, 'for (;;) {}', { timeoutMs: 100 })
      expect(timedOut.error?.code).toBe('TIMEOUT')
      expect(two.stats().busy).toBe(0)
    } finally {
      await two.close()
    }
  })

  it('reports stats', async () => {
    const small = await createPool({ workers: 1, maxWorkers: 1 })
    try {
      expect((await run(small, '1')).result).toBe(1)
      expect(small.stats()).toEqual({
        workers: 1,
        busy: 0,
        starting: 0,
        queued: 0,
        ready: 1,
        respawns: 0,
        executions: 1,
        templateFallbacks: 0,
      })
    } finally {
      await small.close()
    }
  })

  it('queues executions beyond what the workers hold and runs them all', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        run(pool, `(await tools.s.slow({ ms: 10 })).waited + ${i}`),
      ),
    )
    expect(outcomes.map((o) => o.result)).toEqual(Array.from({ length: 24 }, (_, i) => 10 + i))
  })

  it('ends executions with INTERNAL once closed', async () => {
    const other = await createPool({ workers: 1 })
    await other.close()
    const outcome = await other.execute({
      code: '1',
      manifest: MANIFEST,
      onCall: async () => ({ ok: true, value: null }),
    })
    expect(outcome.error).toEqual({ code: 'INTERNAL', message: 'the sandbox pool is closed' })
  })
})

describe('SandboxPool memory isolation', () => {
  it('seeds Math.random per execution, so instances stamped from one template never share a sequence', async () => {
    const code = 'const xs = [Math.random(), Math.random(), Math.random()]; xs'
    const runs = await Promise.all(Array.from({ length: 6 }, () => run(pool, code)))
    const sequences = runs.map((r) => r.result as number[])
    for (const xs of sequences) for (const x of xs) expect(x >= 0 && x < 1).toBe(true)
    expect(new Set(sequences.map((xs) => xs.join())).size).toBe(sequences.length)
    // The guest's own Math.imul cannot bend the generator it relies on.
    const bent = await run(
      pool,
      'Math.imul = () => 0; new Set([Math.random(), Math.random()]).size',
    )
    expect(bent.result).toBe(2)
  })

  it('hands the next execution a zeroed memory with no trace of the previous secret', async () => {
    // One worker, no prewarming: each instance is created on demand, in the memory retired last
    // (its scrub is finished on the spot if the background has not done it yet).
    const inspecting = await createPool({
      workers: 1,
      maxWorkers: 1,
      prewarm: 0,
      inspectMemory: true,
    })
    try {
      const secret = 'SECRET-7f3a9c2e-do-not-leak'
      const first = await inspecting.execute(
        {
          code: `const s = "${secret}"; const kept = [s, s + "!"]; console.log(kept.length); 1`,
          manifest: MANIFEST,
          onCall: async () => ({ ok: true, value: null }),
        },
        { inspectMemory: { needles: [secret] } },
      )
      expect(first.ok).toBe(true)
      // Without the scrub the secret would still be there: disposed runtimes leave data behind.
      expect(first.memory?.needlesAfterRun).toEqual([secret])
      // The memory that held the secret goes, scrubbed, to the next instance.
      const next = await inspecting.execute(
        { code: '2', manifest: MANIFEST, onCall: async () => ({ ok: true, value: null }) },
        { inspectMemory: { needles: [secret] } },
      )
      expect(next.result).toBe(2)
      expect(next.instanceId).not.toBe(first.instanceId)
      expect(next.memory?.recycledFrom).toBe(first.instanceId)
      expect(next.memory?.nonZeroBytesBeforeInstantiation).toBe(0)
      expect(next.memory?.needlesAtStart).toEqual([])
    } finally {
      await inspecting.close()
    }
  })

  it('scrubs the whole memory: a secret written high in a grown one is gone before the next instance', async () => {
    const inspecting = await createPool({
      workers: 1,
      maxWorkers: 1,
      prewarm: 0,
      inspectMemory: true,
    })
    const call = async () => ({ ok: true as const, value: null })
    try {
      const secret = 'HIGH-SECRET-51c0e8'
      // ≈6 MiB of padding, then the secret: high in a memory grown from 6 MiB to 177 pages.
      const first = await inspecting.execute(
        {
          code: `const s = "x".repeat(6e6) + "${secret}"; s.length`,
          manifest: MANIFEST,
          onCall: call,
        },
        { inspectMemory: { needles: [secret] } },
      )
      expect(first.memory?.needlesAfterRun).toEqual([secret])
      const next = await inspecting.execute(
        { code: '2', manifest: MANIFEST, onCall: call },
        { inspectMemory: { needles: [secret] } },
      )
      expect(next.memory?.recycledFrom).toBe(first.instanceId)
      expect(next.memory?.scrubbedBytes).toBe(177 * 64 * 1024)
      expect(next.memory?.nonZeroBytesBeforeInstantiation).toBe(0)
      expect(next.memory?.needlesAtStart).toEqual([])
    } finally {
      await inspecting.close()
    }
  })

  it('drops a memory that grew past 16 MiB instead of scrubbing it', async () => {
    const inspecting = await createPool({
      workers: 1,
      maxWorkers: 1,
      prewarm: 0,
      inspectMemory: true,
    })
    const call = async () => ({ ok: true as const, value: null })
    try {
      const first = await inspecting.execute(
        { code: 'const s = "x".repeat(12e6); s.length', manifest: MANIFEST, onCall: call },
        { inspectMemory: { needles: [] } },
      )
      expect(first.result).toBe(12e6)
      const next = await inspecting.execute(
        { code: '2', manifest: MANIFEST, onCall: call },
        { inspectMemory: { needles: [] } },
      )
      // Another (warm-up) memory may be reused; the grown one never is.
      expect(next.memory?.recycledFrom).not.toBe(first.instanceId)
      expect(next.memory?.nonZeroBytesBeforeInstantiation).toBe(0)
    } finally {
      await inspecting.close()
    }
  })
})
