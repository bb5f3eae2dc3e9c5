/**
 * Admission (src/engine/admission.ts): each limit at N and N+1, fair round-robin between
 * principals, the rate limit's token bucket, the queue timeout, cancellation while waiting,
 * and the drain. Time is faked where the rules are about time.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Admission, type Admitted } from '../../src/engine/admission.js'

const LIMITS = { maxConcurrentExecutions: 2, maxQueuedExecutions: 3, queueTimeoutMs: 10_000 }

function slot(a: Admitted): () => void {
  if (!a.ok) throw new Error(`refused: ${a.code}`)
  return a.release
}

afterEach(() => {
  vi.useRealTimers()
})

describe('concurrency and queue', () => {
  it('runs maxConcurrentExecutions at once; the next one waits for a release', async () => {
    const admission = new Admission(LIMITS)
    const a = slot(await admission.acquire('p'))
    slot(await admission.acquire('p'))
    expect(admission.running).toBe(2)
    let third: Admitted | undefined
    const waiting = admission.acquire('p').then((r) => {
      third = r
      return r
    })
    expect(admission.queued).toBe(1)
    await Promise.resolve()
    expect(third).toBeUndefined()
    a()
    expect((await waiting).ok).toBe(true)
    expect(admission).toMatchObject({ running: 2, queued: 0 })
  })

  it('queues maxQueuedExecutions; one more is OVERLOADED at once, with a retry time', async () => {
    const admission = new Admission(LIMITS)
    for (let i = 0; i < 2; i++) slot(await admission.acquire('p'))
    for (let i = 0; i < 3; i++) void admission.acquire('p')
    expect(admission.queued).toBe(3)
    expect(await admission.check('p')).toMatchObject({ code: 'OVERLOADED' })
    const refused = await admission.acquire('p')
    expect(refused).toEqual({
      ok: false,
      code: 'OVERLOADED',
      message:
        'the gateway is busy: 2 executions running and 3 waiting (limits.maxConcurrentExecutions, limits.maxQueuedExecutions)',
      retryAfterMs: 2500,
    })
  })

  it('a queue of 0 refuses as soon as every slot is taken', async () => {
    const admission = new Admission({ ...LIMITS, maxQueuedExecutions: 0 })
    for (let i = 0; i < 2; i++) slot(await admission.acquire('p'))
    expect((await admission.acquire('p')).ok).toBe(false)
  })

  it('check takes nothing', async () => {
    const admission = new Admission(LIMITS)
    for (let i = 0; i < 10; i++) expect(await admission.check('p')).toBeUndefined()
    expect(admission).toMatchObject({ running: 0, queued: 0 })
  })

  it('refuses nonsensical limits', () => {
    expect(() => new Admission({ ...LIMITS, maxConcurrentExecutions: 0 })).toThrow(
      'admission: maxConcurrentExecutions must be a positive integer, not 0',
    )
  })
})

describe('fairness', () => {
  it('starts waiting executions round-robin across principals', async () => {
    const admission = new Admission({
      ...LIMITS,
      maxConcurrentExecutions: 1,
      maxQueuedExecutions: 100,
    })
    const release = slot(await admission.acquire('busy'))
    const order: string[] = []
    const all: Promise<void>[] = []
    const submit = (key: string, n: number) => {
      for (let i = 0; i < n; i++) {
        all.push(
          admission.acquire(key).then((r) => {
            order.push(key)
            // Hold the slot until the next turn, then pass it on.
            queueMicrotask(slot(r))
          }),
        )
      }
    }
    submit('A', 5)
    submit('B', 2)
    submit('C', 1)
    release()
    await Promise.all(all)
    expect(order).toEqual(['A', 'B', 'C', 'A', 'B', 'A', 'A', 'A'])
  })
})

describe('rate limit per principal', () => {
  it('executionsPerMinute at N passes, N+1 is RATE_LIMITED until a token is due; others are not affected', async () => {
    vi.useFakeTimers({ toFake: ['performance'] })
    const admission = new Admission({
      ...LIMITS,
      maxConcurrentExecutions: 100,
      executionsPerMinute: 3,
    })
    for (let i = 0; i < 3; i++) slot(await admission.acquire('p'))
    expect(await admission.check('p')).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 20_000 })
    expect(await admission.acquire('p')).toEqual({
      ok: false,
      code: 'RATE_LIMITED',
      message:
        'this caller may start 3 executions per minute (limits.perPrincipal.executionsPerMinute)',
      retryAfterMs: 20_000,
    })
    expect((await admission.acquire('q')).ok).toBe(true)
    vi.advanceTimersByTime(19_999)
    expect(await admission.check('p')).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 1 })
    vi.advanceTimersByTime(1)
    expect((await admission.acquire('p')).ok).toBe(true)
  })
})

describe('waiting', () => {
  it('a queued execution that gets no slot within queueTimeoutMs is OVERLOADED', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    const admission = new Admission({
      ...LIMITS,
      maxConcurrentExecutions: 1,
      queueTimeoutMs: 5_000,
    })
    slot(await admission.acquire('p'))
    const waiting = admission.acquire('p')
    vi.advanceTimersByTime(4_999)
    expect(admission.queued).toBe(1)
    vi.advanceTimersByTime(1)
    expect(await waiting).toMatchObject({
      ok: false,
      code: 'OVERLOADED',
      message: 'the gateway is busy: no execution slot was free within 5000 ms',
    })
    expect(admission.queued).toBe(0)
  })

  it('a queued execution whose signal aborts is CANCELLED and leaves the queue', async () => {
    const admission = new Admission({ ...LIMITS, maxConcurrentExecutions: 1 })
    slot(await admission.acquire('p'))
    const controller = new AbortController()
    const waiting = admission.acquire('p', controller.signal)
    controller.abort()
    expect(await waiting).toMatchObject({ ok: false, code: 'CANCELLED' })
    expect(admission.queued).toBe(0)
  })
})

describe('drain', () => {
  it('refuses queued and new executions, lets running ones finish, and reports idle', async () => {
    const admission = new Admission({ ...LIMITS, maxConcurrentExecutions: 1 })
    const release = slot(await admission.acquire('p'))
    const queued = admission.acquire('p')
    admission.drain()
    const shuttingDown = {
      ok: false,
      code: 'OVERLOADED',
      message: 'the gateway is shutting down: retry on another replica',
      retryAfterMs: 1000,
    }
    expect(await queued).toEqual(shuttingDown)
    expect(await admission.acquire('q')).toEqual(shuttingDown)
    expect(await admission.check('q')).toMatchObject({ code: 'OVERLOADED' })
    let idle = false
    const done = admission.idle().then(() => {
      idle = true
    })
    await Promise.resolve()
    expect(idle).toBe(false)
    release()
    await done
    expect(admission).toMatchObject({ running: 0, draining: true })
  })
})
