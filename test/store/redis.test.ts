/**
 * The Redis store against a real redis-server: the token bucket at N and N+1, shared by two
 * stores as two replicas share it, and an outage that fails fast with a clear error and heals
 * when Redis is back.
 */
import { describe, expect, it } from 'vitest'
import { isSluiceError } from '../../src/errors.js'
import { Admission } from '../../src/engine/admission.js'
import { MemoryStore, RedisStore } from '../../src/store/index.js'
import { hasRedis } from '../helpers/redis.js'
import { useRedisStores } from '../helpers/redis-stores.js'

describe.skipIf(!hasRedis)('RedisStore (real redis-server)', () => {
  const redisStores = useRedisStores({ commandTimeoutMs: 500 })
  const open = (prefix = 'test:') => redisStores.connect(prefix)

  it('a bucket of N per minute gives N tokens; N+1 is refused until the next is due', async () => {
    const store = await open()
    for (let i = 0; i < 3; i++)
      expect(await store.takeToken('alice', 3, true)).toEqual({ ok: true })
    const refused = await store.takeToken('alice', 3, true)
    expect(refused.ok).toBe(false)
    // 3 per minute: one token per 20 s, and a few ms have passed since the last one was spent.
    expect(refused.ok === false && refused.retryAfterMs).toBeGreaterThan(19_000)
    expect(refused.ok === false && refused.retryAfterMs).toBeLessThanOrEqual(20_000)
    // Looking takes nothing, and another key has its own bucket.
    expect((await store.takeToken('alice', 3, false)).ok).toBe(false)
    expect(await store.takeToken('bob', 3, true)).toEqual({ ok: true })
  })

  it('two stores on one Redis share the bucket, as two replicas do', async () => {
    const a = await open('shared:')
    const b = await open('shared:')
    expect(await a.takeToken('carol', 2, true)).toEqual({ ok: true })
    expect(await b.takeToken('carol', 2, true)).toEqual({ ok: true })
    expect((await a.takeToken('carol', 2, true)).ok).toBe(false)
    expect((await b.takeToken('carol', 2, true)).ok).toBe(false)
    // A different prefix is a different gateway.
    const other = await open('other:')
    expect(await other.takeToken('carol', 2, true)).toEqual({ ok: true })
  })

  it('an admission on Redis: N+1 executions per minute across two replicas is RATE_LIMITED', async () => {
    const limits = {
      maxConcurrentExecutions: 4,
      maxQueuedExecutions: 4,
      queueTimeoutMs: 1000,
      executionsPerMinute: 2,
    }
    const replicaA = new Admission(limits, {}, await open('admission:'))
    const replicaB = new Admission(limits, {}, await open('admission:'))
    const first = await replicaA.acquire('dave')
    const second = await replicaB.acquire('dave')
    expect(first.ok && second.ok).toBe(true)
    if (first.ok) first.release()
    if (second.ok) second.release()
    expect(await replicaA.acquire('dave')).toMatchObject({ ok: false, code: 'RATE_LIMITED' })
    expect(await replicaB.check('dave')).toMatchObject({ code: 'RATE_LIMITED' })
  })

  it('Redis down: STORE_UNAVAILABLE at once naming the URL, admission OVERLOADED; back up: it heals', async () => {
    const store = await open('outage:')
    const admission = new Admission(
      {
        maxConcurrentExecutions: 1,
        maxQueuedExecutions: 0,
        queueTimeoutMs: 1000,
        executionsPerMinute: 60,
      },
      {},
      store,
    )
    await redisStores.redis.kill()
    const started = performance.now()
    const failure = await store.takeToken('erin', 60, true).catch((e: unknown) => e)
    expect(isSluiceError(failure, 'STORE_UNAVAILABLE')).toBe(true)
    expect((failure as Error).message).toMatch(
      new RegExp(
        `^the Redis store at redis://127\\.0\\.0\\.1:${redisStores.redis.port}/? did not answer: `,
      ),
    )
    expect(await admission.acquire('erin')).toEqual({
      ok: false,
      code: 'OVERLOADED',
      message: 'the shared rate-limit store is unavailable, so no execution starts now',
      retryAfterMs: 1000,
    })
    // Fails fast: well inside the 500 ms command timeout, nothing queued behind the outage.
    expect(performance.now() - started).toBeLessThan(500)

    await redisStores.redis.restart()
    await expect
      .poll(
        () =>
          store.takeToken('erin', 60, true).then(
            (a) => a.ok,
            () => false,
          ),
        {
          timeout: 10_000,
          interval: 100,
        },
      )
      .toBe(true)
  })

  it('put/take: a value is taken once, by one of two replicas, and expires after its TTL', async () => {
    const a = await open('values:')
    const b = await open('values:')
    await a.put('run-1', '{"v":1}', 60_000)
    const [first, second] = await Promise.all([b.take('run-1'), a.take('run-1')])
    expect([first, second].sort()).toEqual(['{"v":1}', undefined])
    expect(await a.take('never-put')).toBeUndefined()
    await a.put('short', 'x', 50)
    await expect.poll(() => b.take('short'), { timeout: 2_000, interval: 20 }).toBeUndefined()
    // A put replaces what was there.
    await a.put('twice', 'old', 60_000)
    await a.put('twice', 'new', 60_000)
    expect(await b.take('twice')).toBe('new')
  })

  it('a URL where nothing listens fails connect() with STORE_UNAVAILABLE, password redacted', async () => {
    const store = new RedisStore({ url: 'redis://user:hunter2@127.0.0.1:1', connectTimeoutMs: 300 })
    redisStores.closeAfterAll(store)
    const failure = await store.connect().catch((e: unknown) => e)
    expect(isSluiceError(failure, 'STORE_UNAVAILABLE')).toBe(true)
    expect((failure as Error).message).toContain('redis://user:***@127.0.0.1:1')
    expect((failure as Error).message).not.toContain('hunter2')
  })
})

describe('MemoryStore', () => {
  it('is what admission uses by default: N per minute pass, N+1 is refused', async () => {
    const store = new MemoryStore()
    expect(await store.takeToken('k', 1, true)).toEqual({ ok: true })
    expect(await store.takeToken('k', 1, true)).toMatchObject({ ok: false })
  })

  it('put/take: taken once, gone after its TTL', async () => {
    const store = new MemoryStore()
    await store.put('a', 'value', 60_000)
    expect(await store.take('a')).toBe('value')
    expect(await store.take('a')).toBeUndefined()
    await store.put('b', 'value', 20)
    await expect.poll(() => store.take('b'), { timeout: 2_000, interval: 10 }).toBeUndefined()
  })

  it('holds at most maxChars of values: N fit, N+1 is STORE_UNAVAILABLE; a take frees room', async () => {
    const store = new MemoryStore({ maxChars: 10 })
    await store.put('a', '12345', 60_000)
    await store.put('b', '12345', 60_000)
    const full = await store.put('c', '1', 60_000).catch((e: unknown) => e)
    expect(isSluiceError(full, 'STORE_UNAVAILABLE')).toBe(true)
    expect((full as Error).message).toBe(
      'the in-process store is full: it holds 10 of 10 characters; configure store.redis for more',
    )
    expect(await store.take('a')).toBe('12345')
    await store.put('c', '1', 60_000)
    // Replacing a key counts its new value only.
    await store.put('b', '123456789', 60_000)
    expect(await store.take('b')).toBe('123456789')
  })
})
