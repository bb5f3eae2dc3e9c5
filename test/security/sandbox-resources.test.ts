/**
 * Resource exhaustion (threat model §3.B, RES-*). Each hostile execution ends in a typed error,
 * and the same pool then runs the next execution fine. Small limits keep the suite quick.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { SandboxPool } from '../../src/sandbox/index.js'
import { createPool, expectHealthy, expectNoHostDetail, recorder, run } from '../sandbox/harness.js'

let pool: SandboxPool
const FAST = { timeoutMs: 300 }
const MiB = 1024 * 1024

beforeAll(async () => {
  pool = await createPool({ watchdogGraceMs: 300 })
})

afterEach(async () => {
  await expectHealthy(pool)
})

afterAll(async () => {
  await pool.close()
})

describe('sandbox resources', () => {
  it('RES-01 an infinite loop is interrupted at the deadline', async () => {
    const outcome = await run(pool, 'while (true) {}', FAST)
    expect(outcome.error).toMatchObject({
      code: 'TIMEOUT',
      message: 'the execution ran longer than 300 ms',
    })
  })

  it('RES-02 a loop that catches the interrupt still ends', async () => {
    const outcome = await run(pool, 'for (;;) { try { for (;;) {} } catch {} }', FAST)
    expect(outcome.error?.code).toBe('TIMEOUT')
  })

  it('RES-01 an infinite loop inside a promise job ends', async () => {
    const outcome = await run(
      pool,
      'Promise.resolve().then(() => { for (;;) {} }); await new Promise(() => {})',
      FAST,
    )
    expect(outcome.error?.code).toBe('TIMEOUT')
  })

  it('RES-03 a microtask flood ends at the deadline', async () => {
    const outcome = await run(
      pool,
      '(function f() { Promise.resolve().then(f) })(); await new Promise(() => {})',
      FAST,
    )
    expect(outcome.error?.code).toBe('TIMEOUT')
  })

  it('RES-03 a microtask flood left running after the result does not hold the execution', async () => {
    const outcome = await run(pool, '(function f() { Promise.resolve().then(f) })(); "done"', FAST)
    expect(outcome.result).toBe('done')
  })

  it('RES-04 a never-settling promise ends with TIMEOUT from the host timer', async () => {
    const outcome = await run(pool, 'await new Promise(() => {})', FAST)
    expect(outcome.error).toEqual({
      code: 'TIMEOUT',
      message: 'the execution ran longer than 300 ms',
    })
  })

  it('RES-05 many small objects hit the memory limit', async () => {
    const outcome = await run(pool, 'const a: object[] = []; for (;;) a.push({ n: a.length })', {
      memoryBytes: 8 * MiB,
      timeoutMs: 5000,
    })
    expect(outcome.error?.code).toBe('MEMORY_LIMIT')
    expect(outcome.error?.message).toBe('out of memory: the execution reached its memory limit')
  })

  it('RES-05 huge single allocations fail inside the guest, each with its own error', async () => {
    for (const [code, error] of [
      [
        "'x'.repeat(2 ** 29)",
        { code: 'MEMORY_LIMIT', message: 'out of memory: the execution reached its memory limit' },
      ],
      [
        'new ArrayBuffer(2 ** 31)',
        { code: 'RUNTIME_ERROR', message: 'RangeError: invalid array buffer length' },
      ],
      [
        'let s = "x"; for (;;) s += s',
        { code: 'RUNTIME_ERROR', message: 'InternalError: string too long' },
      ],
    ] as const) {
      const outcome = await run(pool, code, { memoryBytes: 16 * MiB, timeoutMs: 2000 })
      expect(outcome.error).toMatchObject(error)
      expectNoHostDetail(outcome)
    }
  })

  it('RES-05 thrashing near the limit with 1 MB allocations ends at its own deadline, no worker killed', async () => {
    const respawns = pool.stats().respawns
    const outcome = await run(
      pool,
      'const a: string[] = []; for (let i = 0; i < 1000; i++) a.push(String(i).padEnd(1 << 20, "x"))',
      { memoryBytes: 64 * MiB, timeoutMs: 300 },
    )
    // The allocator's loops meet the clock (fuel checks): TIMEOUT, not the watchdog.
    expect(outcome.error).toEqual({
      code: 'TIMEOUT',
      message: 'the execution ran longer than 300 ms',
    })
    expect(pool.stats().respawns).toBe(respawns)
  })

  it('RES-06 deep recursion is a guest stack error', async () => {
    const outcome = await run(pool, 'function f(): number { return f() + 1 }\nf()')
    expect(outcome.error).toMatchObject({ code: 'STACK_LIMIT', line: 1 })
  })

  it('RES-06 deeply nested source in eval and nested JSON are guest stack errors', async () => {
    for (const code of [
      "eval('('.repeat(100000) + '1' + ')'.repeat(100000))",
      'JSON.parse("[".repeat(1000000))',
    ]) {
      const outcome = await run(pool, code, { timeoutMs: 5000 })
      expect(outcome.error?.code).toBe('STACK_LIMIT')
    }
  })

  it('RES-07 a catastrophic regex ends by the deadline', async () => {
    const outcome = await run(pool, "/(a+)+$/.test('a'.repeat(40) + '!')", FAST)
    expect(outcome.error?.code).toBe('TIMEOUT')
  })

  it('RES-08 a huge result is refused with OUTPUT_LIMIT', async () => {
    const outcome = await run(pool, '"x".repeat(8 * 1024 * 1024)', {
      maxOutputBytes: MiB,
      memoryBytes: 64 * MiB,
    })
    expect(outcome.error).toEqual({
      code: 'OUTPUT_LIMIT',
      message: `the result is larger than ${MiB} bytes once serialised`,
    })
  })

  it('RES-08 a log flood is truncated with a marker and the run still succeeds', async () => {
    const outcome = await run(
      pool,
      'for (let i = 0; i < 20000; i++) console.log("line " + i); "ok"',
      { maxLogBytes: 1000, timeoutMs: 5000 },
    )
    expect(outcome.result).toBe('ok')
    const last = outcome.logs[outcome.logs.length - 1]!
    expect(last).toMatch(/^\[logs truncated: \d+ bytes dropped\]$/)
    const kept = outcome.logs.slice(0, -1).reduce((n, l) => n + Buffer.byteLength(l), 0)
    expect(kept).toBeLessThanOrEqual(1000)
  })

  it('RES-09 huge or deep arguments are refused before the host', async () => {
    const rec = recorder()
    const huge = await run(
      pool,
      'await tools.s.echo({ s: "x".repeat(4 * 1024 * 1024) })',
      { maxArgsBytes: 256 * 1024 },
      rec,
    )
    expect(huge.error?.code).toBe('INVALID_ARGS')
    const deep = await run(
      pool,
      'let a: any = 1; for (let i = 0; i < 10000; i++) a = { a }; await tools.s.echo(a)',
      {},
      rec,
    )
    expect(deep.error?.code).toBe('INVALID_ARGS')
    expect(rec.calls).toHaveLength(0)
  })

  it('RES-10 a flood of sequential calls stops at the call budget', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      'for (let i = 0; i < 10000; i++) await tools.s.echo({ i })',
      { maxToolCalls: 50 },
      rec,
    )
    expect(outcome.error?.code).toBe('CALL_LIMIT')
    expect(rec.calls).toHaveLength(50)
  })

  it('RES-10 Promise.all of 1000 calls respects the budget and the concurrency cap', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      'const r = await Promise.allSettled(Array.from({ length: 1000 }, () => tools.s.slow({ ms: 1 })));\nr.filter((x) => x.status === "rejected").length',
      { maxToolCalls: 50, maxConcurrentCalls: 4, timeoutMs: 10_000 },
      rec,
    )
    expect(outcome.result).toBe(950)
    expect(rec.calls).toHaveLength(50)
    expect(rec.maxInFlight).toBe(4)
  })

  it('RES-14 an oversized source is refused before parsing', async () => {
    const outcome = await run(pool, '//' + 'x'.repeat(1024 * 1024))
    expect(outcome.error?.code).toBe('SOURCE_LIMIT')
  })

  it('RES-14 a source of deeply nested parentheses ends in a typed error', async () => {
    const outcome = await run(pool, '('.repeat(100000) + '1' + ')'.repeat(100000), {
      maxSourceBytes: 256 * 1024,
    })
    expect(outcome.error).toEqual({
      code: 'SYNTAX_ERROR',
      message: 'SyntaxError: the code is nested too deeply to parse',
    })
    expectNoHostDetail(outcome)
  })
})
