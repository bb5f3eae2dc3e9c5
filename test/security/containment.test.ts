/**
 * Containment (issue 10, DESIGN.md §3b "Result envelope, checked by the host" and "Isolation
 * between executions"): nothing a guest does makes the host misreport its outcome, no guest
 * code runs while the host reads an outcome, and no execution fails, slows, restarts or re-runs
 * another. Each trick below was a failing test before the host read the outcome itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXECUTION_ERROR_CODES } from '../../src/errors.js'
import type { SandboxEvent, SandboxOutcome, SandboxPool } from '../../src/sandbox/index.js'
import { WARNING_CODES } from '../../src/sandbox/envelope.js'
import { hasInvisible } from '../../src/text.js'
import { createPool, expectHealthy, expectNoHostDetail, recorder, run } from '../sandbox/harness.js'

let pool: SandboxPool

beforeAll(async () => {
  pool = await createPool({ workers: 2, maxWorkers: 16 })
})

afterAll(async () => {
  await pool.close()
})

/** The envelope contract every outcome obeys, whatever the guest did. */
function expectEnvelope(outcome: SandboxOutcome, code: string, maxOutputBytes = 1024 * 1024): void {
  expect(typeof outcome.ok).toBe('boolean')
  if (outcome.ok) {
    expect(Buffer.byteLength(JSON.stringify(outcome.result ?? null))).toBeLessThanOrEqual(
      maxOutputBytes,
    )
  } else {
    const error = outcome.error!
    expect(EXECUTION_ERROR_CODES as readonly string[]).toContain(error.code)
    expect(Buffer.byteLength(error.message)).toBeLessThanOrEqual(2048)
    expect(hasInvisible(error.message)).toBe(false)
    for (const n of [error.line, error.column]) {
      if (n !== undefined) expect(Number.isInteger(n) && n > 0).toBe(true)
    }
    if (error.line !== undefined) expect(error.line).toBeLessThanOrEqual(code.split('\n').length)
  }
  for (const w of outcome.warnings) expect(WARNING_CODES as readonly string[]).toContain(w.code)
  expectNoHostDetail(outcome)
}

describe('the guest cannot write its own envelope', () => {
  it('replacing Promise species, then or constructor cannot smuggle a result past the limit', async () => {
    const code = `const big = 'x'.repeat(5e6)
      const forged = '{"ok":true,"result":"' + big + '"}'
      try { Object.defineProperty(Promise, Symbol.species, { get() { return function (exec: any) { exec(() => {}, () => {}) } } }) } catch {}
      try { (Promise.prototype as any).constructor = function (exec: any) { exec((v: any) => v, () => {}) } } catch {}
      const then = Promise.prototype.then
      Promise.prototype.then = function (ok: any, err: any) { return then.call(this, () => ok && ok(forged), err) } as any
      return 'small'`
    const outcome = await run(pool, code)
    expect(outcome).toMatchObject({ ok: true, result: 'small' })
    expectEnvelope(outcome, code)
  })

  it('a 5 MB result is OUTPUT_LIMIT, however it is returned', async () => {
    for (const code of [
      "'x'.repeat(5e6)",
      "await Promise.resolve('x'.repeat(5e6))",
      "({ then(ok: any) { ok('x'.repeat(5e6)) } })",
    ]) {
      const outcome = await run(pool, code)
      expect(outcome.error?.code).toBe('OUTPUT_LIMIT')
      expectEnvelope(outcome, code)
    }
  })

  it('a guest error cannot claim a host code, a long code or a long message', async () => {
    const claimed = await run(
      pool,
      "const e: any = new Error('boom'); e.code = 'TOOL_DENIED'; throw e",
    )
    expect(claimed.error).toMatchObject({ code: 'RUNTIME_ERROR', message: 'Error: boom' })
    const long = await run(
      pool,
      "throw Object.assign(new Error('x'), { code: 'X'.repeat(100000) })",
    )
    expect(long.error).toMatchObject({ code: 'RUNTIME_ERROR', message: 'Error: x' })
    const code = "throw new Error('\\u202e' + 'a'.repeat(100000) + '\\u{E0041}\\u200b')"
    const huge = await run(pool, code)
    expect(huge.error?.code).toBe('RUNTIME_ERROR')
    expect(huge.error?.message.startsWith('Error: aaaa')).toBe(true)
    expect(huge.error?.message.endsWith('…')).toBe(true)
    expectEnvelope(huge, code)
  })

  it('positions come only from inside the model program, as positive integers', async () => {
    for (const stack of [
      'model.ts:abc:def',
      'model.ts:99999:3',
      'model.ts:-4:2',
      'elsewhere.js:1:1',
    ]) {
      const code = `const e = new Error('x'); Object.defineProperty(e, 'stack', { value: ${JSON.stringify(stack)} }); throw e`
      const outcome = await run(pool, code)
      expect(outcome.error).toEqual({ code: 'RUNTIME_ERROR', message: 'Error: x' })
    }
  })
})

describe('no guest code runs while the host reads an outcome', () => {
  it('a thrown Proxy runs none of its traps: no tool call, no log, no forged MEMORY_LIMIT', async () => {
    const rec = recorder()
    const code = `const trap = (n: number) => { tools.s.echo({ leaked: n }); console.log('trap ' + n) }
      throw new Proxy(new Error('real'), {
        get(t, k) { trap(1); return k === 'message' ? 'out of memory' : Reflect.get(t, k) },
        getOwnPropertyDescriptor(t, k) { trap(2); return Reflect.getOwnPropertyDescriptor(t, k) },
        getPrototypeOf() { trap(3); return (globalThis as any).InternalError.prototype },
        has() { trap(4); return true },
        ownKeys(t) { trap(5); return Reflect.ownKeys(t) },
      })`
    const outcome = await run(pool, code, {}, rec)
    expect(outcome.error).toEqual({
      code: 'RUNTIME_ERROR',
      message: 'uncaught exception: a Proxy object',
    })
    expect(outcome.logs).toEqual([])
    expect(rec.calls).toEqual([])
  })

  it('an error with getters is read through its data properties only', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      `const e = new (globalThis as any).InternalError('x')
      Object.defineProperty(e, 'message', { get() { tools.s.echo({ leaked: 1 }); return 'out of memory' } })
      Object.defineProperty(e, 'stack', { get() { tools.s.echo({ leaked: 2 }); return 'model.ts:1:1' } })
      throw e`,
      {},
      rec,
    )
    expect(outcome.error).toEqual({ code: 'RUNTIME_ERROR', message: 'uncaught InternalError' })
    expect(rec.calls).toEqual([])
  })

  it('getters, toJSON and a poisoned Object.prototype.toJSON in the result call no tool', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      `Object.prototype.toJSON = function () { tools.s.echo({ leaked: 'proto' }); return 'forged' }
      ;(Array.prototype as any).toJSON = function () { tools.s.echo({ leaked: 'array' }); return 'forged' }
      Object.defineProperty(Array.prototype, '1', { get() { tools.s.echo({ leaked: 'hole' }); return 'forged' }, configurable: true })
      ;({ a: 1, list: [0, , 2], get g() { tools.s.echo({ leaked: 'getter' }); return 1 } })`,
      {},
      rec,
    )
    expect(outcome.ok).toBe(true)
    expect(outcome.result).toEqual({ a: 1, list: [0, null, 2] })
    expect(outcome.warnings.map((w) => w.code)).toEqual(['GETTER_IN_RESULT'])
    expect(rec.calls).toEqual([])
  })

  it('an Array.prototype index setter, an iterator and RegExp.exec cannot reach the serialiser', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      `for (let i = 0; i < 4; i++) Object.defineProperty(Array.prototype, String(i), { set() { tools.s.echo({ leaked: 'set' }) }, configurable: true })
      ;(Array.prototype as any)[Symbol.iterator] = function () { tools.s.echo({ leaked: 'iter' }); return [][Symbol.iterator]() }
      RegExp.prototype.exec = function () { tools.s.echo({ leaked: 'exec' }); return null }
      ;({ 'odd key': { get x() { return 1 } }, m: new Map(), p: Promise.resolve(1) })`,
      {},
      rec,
    )
    expect(outcome.result).toEqual({ 'odd key': {}, m: {}, p: {} })
    expect(outcome.warnings.map((w) => [w.code, w.path])).toEqual([
      ['GETTER_IN_RESULT', 'result["odd key"].x'],
      ['MAP_IN_RESULT', 'result.m'],
      ['PROMISE_IN_RESULT', 'result.p'],
    ])
    expect(rec.calls).toEqual([])
  })

  it('jobs queued behind the settling job cannot call tools or log', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      `Promise.resolve().then(() => Promise.resolve()).then(() => { tools.s.echo({ after: true }); console.log('after') })
      return 1`,
      {},
      rec,
    )
    expect(outcome).toMatchObject({ ok: true, result: 1, logs: [] })
    expect(rec.calls).toEqual([])
  })

  it('a Proxy or a boxed value in the result is read without its traps or valueOf', async () => {
    const rec = recorder()
    const outcome = await run(
      pool,
      `Number.prototype.valueOf = function () { tools.s.echo({ leaked: 'valueOf' }); return 0 }
      ;({ p: new Proxy({}, { ownKeys() { tools.s.echo({ leaked: 'keys' }); return [] } }), n: new Number(7), s: new String('s'), d: new Date(0) })`,
      {},
      rec,
    )
    expect(outcome.result).toEqual({ p: null, n: 7, s: 's', d: '1970-01-01T00:00:00.000Z' })
    expect(outcome.warnings.map((w) => w.code)).toEqual(['PROXY_IN_RESULT'])
    expect(rec.calls).toEqual([])
  })
})

describe('builtins that ignore the interrupt end within the execution’s own limits', () => {
  const LIMITS = { timeoutMs: 500 }
  const cases: [string, string, string][] = [
    ['Array(2**32-1).join("")', 'TIMEOUT', 'the execution ran longer than 500 ms'],
    [
      'Array.prototype.lastIndexOf.call({ length: 2 ** 53 - 1 }, 1)',
      'TIMEOUT',
      'the execution ran longer than 500 ms',
    ],
    ['/(a+)+$/.test("a".repeat(40) + "b")', 'TIMEOUT', 'the execution ran longer than 500 ms'],
    [
      '"x".repeat(2 ** 28).length',
      'MEMORY_LIMIT',
      'out of memory: the execution reached its memory limit',
    ],
    [
      'let o: any = 1\nfor (let i = 0; i < 200000; i++) o = [o]\nreturn o',
      'OUTPUT_LIMIT',
      'the result is nested deeper than 64 levels',
    ],
  ]
  for (const [code, expected, message] of cases) {
    it(`${code.split('\n')[0]} → ${expected}, and no worker is killed`, async () => {
      const before = pool.stats().respawns
      const outcome = await run(pool, code, LIMITS)
      expect(outcome.error?.code).toBe(expected)
      expect(outcome.error?.message).toBe(message)
      expectEnvelope(outcome, code)
      expect(pool.stats().respawns).toBe(before)
      await expectHealthy(pool)
    })
  }
})

describe('isolation between executions', () => {
  const HOSTILE: [string, string][] = [
    ['for (;;) {}', 'TIMEOUT'],
    ['Array(2**32-1).join("")', 'TIMEOUT'],
    ['Array.prototype.lastIndexOf.call({ length: 2 ** 53 - 1 }, 1)', 'TIMEOUT'],
    // Thrashing near the memory limit takes QuickJS ≈18 s to reach it: the clock ends it first.
    ['const a: string[] = []; for (;;) a.push("x".repeat(1024) + a.length)', 'TIMEOUT'],
    ['"x".repeat(2 ** 28).length', 'MEMORY_LIMIT'],
  ]
  for (const [hostile, expected] of HOSTILE) {
    it(`12 benign executions beside \`${hostile}\` all succeed exactly once, before it ends`, async () => {
      const before = pool.stats().respawns
      const seen = new Map<string, number>()
      const finished: string[] = []
      const rec = recorder({
        echo: (call) => {
          const id = String((call.args as { id: string }).id)
          seen.set(id, (seen.get(id) ?? 0) + 1)
          return { id }
        },
      })
      // 5 s: long enough that 12 benign runs on a loaded 2-core runner end first.
      const hostileRun = run(pool, hostile, { timeoutMs: 5000 }).then((o) => {
        finished.push('hostile')
        return o
      })
      const benign = Array.from({ length: 12 }, (_, i) =>
        run(pool, `const r: any = await tools.s.echo({ id: 'b${i}' }); return r.id`, {}, rec).then(
          (o) => {
            finished.push(`b${i}`)
            return o
          },
        ),
      )
      const outcomes = await Promise.all(benign)
      expect(outcomes.map((o) => o.result)).toEqual(Array.from({ length: 12 }, (_, i) => `b${i}`))
      expect([...seen.entries()].sort()).toEqual(
        Array.from({ length: 12 }, (_, i) => [`b${i}`, 1] as [string, number]).sort(),
      )
      const hostileOutcome = await hostileRun
      expect(hostileOutcome.error?.code).toBe(expected)
      // Nobody waited for a hostile one that runs to its deadline: it finished last.
      if (expected === 'TIMEOUT') expect(finished.at(-1)).toBe('hostile')
      expect(pool.stats().respawns).toBe(before)
    })
  }
})

describe('templates', () => {
  it('a failed stamp is reported once, counted, and its worker replaced; executions go on', async () => {
    const events: SandboxEvent[] = []
    const faulty = await createPool({
      workers: 1,
      maxWorkers: 1,
      faultTemplateReplay: true,
      onEvent: (e) => events.push(e),
    })
    try {
      for (let i = 0; i < 4; i++) expect((await run(faulty, `${i} * 2`)).result).toBe(i * 2)
      expect(events.filter((e) => e.type === 'template-fallback')).toEqual([
        { type: 'template-fallback', workerId: 'w1', reason: 'a fault injected by a test' },
      ])
      expect(faulty.stats()).toMatchObject({ templateFallbacks: 1, respawns: 1, workers: 1 })
    } finally {
      await faulty.close()
    }
  })
})

describe('the guest clock', () => {
  it('stands still while the guest computes and moves at each tool answer', async () => {
    const outcome = await run(
      pool,
      `const t0 = Date.now()
      let x = 0
      for (let i = 0; i < 3e6; i++) x += i % 3
      const t1 = Date.now()
      await tools.s.slow({ ms: 30 })
      const t2 = new Date().getTime()
      return [t1 - t0, t2 - t1 >= 30, x > 0]`,
    )
    expect(outcome.result).toEqual([0, true, true])
  })
})
