/**
 * Admission through the real engine: the rate limit per principal and the concurrency limit
 * end in `RATE_LIMITED` / `OVERLOADED` results that name the limit and carry `retryAfterMs`,
 * nothing of the refused execution runs (no upstream call, no audit of it), and the metrics
 * count the refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { metrics } from '../../src/telemetry/index.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'

let rt: TestRuntime

beforeAll(async () => {
  rt = await testRuntime({
    recording: true,
    config: {
      limits: {
        maxConcurrentExecutions: 1,
        maxQueuedExecutions: 1,
        perPrincipal: { executionsPerMinute: 3 },
      },
    },
  })
})

afterAll(async () => {
  await rt?.close()
})

const read = (id: string) => `return (await tools.rec.read_item({ id: '${id}' })).title`

describe('admission through the engine', () => {
  it('a principal past executionsPerMinute is RATE_LIMITED; another principal is not', async () => {
    const alice = rt.principal({ sub: 'alice-rate' })
    for (let i = 0; i < 3; i++)
      expect((await rt.engine.execute(alice, read(`a${i}`))).ok).toBe(true)
    const before = rt.recorded().length
    const limited = await rt.engine.execute(alice, read('a3'))
    expect(limited).toMatchObject({
      ok: false,
      calls: [],
      error: {
        code: 'RATE_LIMITED',
        message:
          'this caller may start 3 executions per minute (limits.perPrincipal.executionsPerMinute)',
      },
    })
    expect(limited.error?.retryAfterMs).toBeGreaterThan(0)
    expect(limited.error?.retryAfterMs).toBeLessThanOrEqual(20_000)
    expect(rt.recorded().length).toBe(before)
    expect((await rt.engine.execute(rt.principal({ sub: 'bob-rate' }), read('b0'))).ok).toBe(true)
  })

  it('past running + queued, OVERLOADED at once; the queued one runs after the running one', async () => {
    const rejections = () =>
      Number(
        metrics.registry
          .render()
          .split('\n')
          .find((l) => l.startsWith('sluice_execution_rejections_total{reason="OVERLOADED"}'))
          ?.split(' ')[1] ?? 0,
      )
    const before = rejections()
    const who = (n: number) => rt.principal({ sub: `crowd-${n}` })
    const running = rt.engine.execute(
      who(1),
      'await tools.rec.read_item({ id: "slow" }); let x = 0; for (let i = 0; i < 2e6; i++) x += i; return "one"',
    )
    const queued = rt.engine.execute(who(2), 'return "two"')
    const refused = await rt.engine.execute(who(3), 'return "three"')
    expect(refused.error).toMatchObject({ code: 'OVERLOADED' })
    expect(refused.error?.message).toBe(
      'the gateway is busy: 1 executions running and 1 waiting (limits.maxConcurrentExecutions, limits.maxQueuedExecutions)',
    )
    expect(rejections()).toBe(before + 1)
    expect((await running).result).toBe('one')
    expect((await queued).result).toBe('two')
  })
})
