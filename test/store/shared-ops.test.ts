/**
 * The store operations tasks are built on, the same assertions on both implementations: the
 * in-process store and a real redis-server, where "two replicas" are two stores on one Redis.
 * get leaves the value; swap is a compare-and-set one of two racers wins; a hold set holds N
 * members, refuses the N+1st, and frees a place when a hold runs out or is released; a message
 * published by one replica reaches the other's subscriber.
 */
import { describe, expect, it } from 'vitest'
import { MemoryStore, type SharedStore } from '../../src/store/index.js'
import { hasRedis } from '../helpers/redis.js'
import { useRedisStores } from '../helpers/redis-stores.js'

interface Pair {
  /** Two views of one shared store, as two replicas have. */
  a: SharedStore
  b: SharedStore
}

function contract(name: string, open: (prefix: string) => Promise<Pair>): void {
  describe(name, () => {
    it('get returns the value and leaves it; an expired or missing key is undefined', async () => {
      const { a, b } = await open('get:')
      await a.put('k', 'v', 60_000)
      expect(await b.get('k')).toBe('v')
      expect(await b.get('k')).toBe('v')
      expect(await a.get('missing')).toBeUndefined()
      await a.put('short', 'x', 30)
      await expect.poll(() => b.get('short'), { timeout: 2_000, interval: 10 }).toBeUndefined()
    })

    it('swap sets only from the expected value; of two racing replicas one wins', async () => {
      const { a, b } = await open('swap:')
      // Expected absent: creates once.
      expect(await a.swap('t', undefined, 'one', 60_000)).toBe(true)
      expect(await b.swap('t', undefined, 'other', 60_000)).toBe(false)
      expect(await b.get('t')).toBe('one')
      // From a stale value: refused, nothing changes.
      expect(await b.swap('t', 'zero', 'two', 60_000)).toBe(false)
      expect(await a.get('t')).toBe('one')
      const wins = await Promise.all([
        a.swap('t', 'one', 'from-a', 60_000),
        b.swap('t', 'one', 'from-b', 60_000),
      ])
      expect(wins.filter(Boolean)).toHaveLength(1)
      expect(await a.get('t')).toBe(wins[0] ? 'from-a' : 'from-b')
      // The swapped value has the swap's TTL.
      expect(await a.swap('t', await a.get('t'), 'brief', 30)).toBe(true)
      await expect.poll(() => b.get('t'), { timeout: 2_000, interval: 10 }).toBeUndefined()
    })

    it('hold: N members are held, the N+1st is refused; renewing a held one still works', async () => {
      const { a, b } = await open('hold:')
      expect(await a.hold('alice', 'one', 2, 60_000)).toEqual({ held: true, count: 1 })
      expect(await b.hold('alice', 'two', 2, 60_000)).toEqual({ held: true, count: 2 })
      expect(await a.hold('alice', 'three', 2, 60_000)).toEqual({ held: false, count: 2 })
      expect(await a.isHeld('alice', 'three')).toBe(false)
      // A member held already renews even when the set is full.
      expect(await b.hold('alice', 'one', 2, 60_000)).toEqual({ held: true, count: 2 })
      // Another set has its own places.
      expect(await a.hold('bob', 'three', 2, 60_000)).toEqual({ held: true, count: 1 })
      // A release frees a place.
      await b.release('alice', 'two')
      expect(await a.isHeld('alice', 'two')).toBe(false)
      expect(await a.hold('alice', 'three', 2, 60_000)).toEqual({ held: true, count: 2 })
      await a.release('alice', 'never-held')
    })

    it('a hold that is not renewed runs out and frees its place, as a dead holder would', async () => {
      const { a, b } = await open('lease:')
      expect(await a.hold('p', 'dies', 1, 50)).toEqual({ held: true, count: 1 })
      expect(await b.isHeld('p', 'dies')).toBe(true)
      expect((await b.hold('p', 'next', 1, 60_000)).held).toBe(false)
      await expect.poll(() => b.isHeld('p', 'dies'), { timeout: 2_000, interval: 10 }).toBe(false)
      expect(await b.hold('p', 'next', 1, 60_000)).toEqual({ held: true, count: 1 })
    })

    it("one replica's message reaches the other's subscriber; after unsubscribing, none", async () => {
      const { a, b } = await open('pubsub:')
      const got: string[] = []
      let arrived: () => void = () => {}
      const unsubscribe = await b.subscribe('events', (message) => {
        got.push(message)
        arrived()
      })
      const first = new Promise<void>((resolve) => {
        arrived = resolve
      })
      await a.publish('events', 'cancel:t1')
      await first
      expect(got).toEqual(['cancel:t1'])
      await unsubscribe()
      // A message on another channel, then one after unsubscribing: neither is delivered, and a
      // marker subscription proves the deliveries before it are done.
      const marker = await b.subscribe('marker', () => arrived())
      const done = new Promise<void>((resolve) => {
        arrived = resolve
      })
      await a.publish('other', 'nope')
      await a.publish('events', 'after')
      await a.publish('marker', 'x')
      await done
      expect(got).toEqual(['cancel:t1'])
      await marker()
    })
  })
}

contract('MemoryStore', async () => {
  const store = new MemoryStore()
  return { a: store, b: store }
})

describe.skipIf(!hasRedis)('RedisStore (real redis-server)', () => {
  const redisStores = useRedisStores({ commandTimeoutMs: 500 })
  const connect = redisStores.connect

  contract('two stores on one Redis', async (prefix) => ({
    a: await connect(prefix),
    b: await connect(prefix),
  }))

  it('another key prefix is another gateway: its holds and messages are its own', async () => {
    const a = await connect('gw-a:')
    const b = await connect('gw-b:')
    expect((await a.hold('p', 'm', 1, 60_000)).held).toBe(true)
    expect(await b.isHeld('p', 'm')).toBe(false)
    expect((await b.hold('p', 'other', 1, 60_000)).held).toBe(true)
    const heard: string[] = []
    let arrived: () => void = () => {}
    const done = new Promise<void>((resolve) => {
      arrived = resolve
    })
    await b.subscribe('events', (m) => {
      heard.push(m)
      arrived()
    })
    await a.publish('events', 'for-a')
    await b.publish('events', 'for-b')
    await done
    expect(heard).toEqual(['for-b'])
  })

  it('a subscriber subscribes again after a Redis restart, and hears what is published then', async () => {
    const a = await connect('restart:')
    const b = await connect('restart:')
    const heard: string[] = []
    await b.subscribe('events', (m) => heard.push(m))
    await redisStores.redis.restart()
    // Each replica's client reconnects on its own; publish until the subscriber hears one.
    await expect
      .poll(
        async () => {
          await a.publish('events', 'back').catch(() => undefined)
          return heard.includes('back')
        },
        { timeout: 10_000, interval: 100 },
      )
      .toBe(true)
  })
})
