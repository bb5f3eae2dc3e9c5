/**
 * The shared vault (StoreVault) the same way on both stores: the in-process store and a real
 * redis-server, where two replicas are two vaults on two connections to one Redis. The same
 * value gets one token from either replica (also when both make it at the same moment), a token
 * resolves on the other, labels from two sources join, maxValuesPerSession holds at N and
 * refuses N+1 across replicas, values expire after ttlSeconds while their numbers are not
 * reused, and what sits in the store is sealed: an entry moved, altered or read under another
 * key does not open.
 */
import { randomBytes } from 'node:crypto'
import { createClient } from '@redis/client'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { isSluiceError } from '../../src/errors.js'
import {
  StoreVault,
  VAULT_SWAP_ATTEMPTS,
  VaultCipher,
  type StoreVaultOptions,
  type VaultItem,
  type VaultStore,
} from '../../src/guard/index.js'
import { MemoryStore, type SharedStore } from '../../src/store/index.js'
import { hasRedis } from '../helpers/redis.js'
import { useRedisStores } from '../helpers/redis-stores.js'

const KEY = randomBytes(32)
/** A scope as the engine makes it: 32 hex digits of a digest. */
const SCOPE = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
const OTHER = 'ffffffffffffffffffffffffffffffff'
const email = (name: string): VaultItem => ({ kind: 'email', value: `${name}@example.com` })

/** A store that counts the swaps it lost by key (`n` counter, `v` value, `t` entry). */
function counting(store: SharedStore): VaultStore & { lost: Record<string, number> } {
  const counted = {
    lost: {} as Record<string, number>,
    get: (key: string) => store.get(key),
    take: (key: string) => store.take(key),
    hold: (key: string, member: string, max: number, ms: number) =>
      store.hold(key, member, max, ms),
    release: (key: string, member: string) => store.release(key, member),
    async swap(key: string, expected: string | undefined, value: string, ttlMs: number) {
      const won = await store.swap(key, expected, value, ttlMs)
      if (!won) {
        const kind = key.split(':')[2] ?? '?'
        counted.lost[kind] = (counted.lost[kind] ?? 0) + 1
      }
      return won
    },
  }
  return counted
}

interface Replicas {
  /** The stores of two replicas (one shared store seen twice). */
  stores: [SharedStore, SharedStore]
  vault(store: VaultStore, options?: Partial<StoreVaultOptions>): StoreVault
}

function contract(name: string, open: (prefix: string) => Promise<[SharedStore, SharedStore]>) {
  describe(name, () => {
    let prefixes = 0
    const replicas = async (): Promise<Replicas> => {
      const stores = await open(`vault${prefixes++}:`)
      return {
        stores,
        vault: (store, options = {}) =>
          new StoreVault({ store, key: KEY, ttlSeconds: 60, maxValuesPerSession: 3, ...options }),
      }
    }

    it('one value, one token on every replica; a token made on A resolves on B', async () => {
      const { stores, vault } = await replicas()
      const a = vault(stores[0], { maxValuesPerSession: 10 })
      const b = vault(stores[1], { maxValuesPerSession: 10 })
      const phone: VaultItem = { kind: 'phone', value: '+1 415 555 2671' }
      expect(
        await a.tokenize(SCOPE, [email('ada'), phone, email('alan'), email('ada')], []),
      ).toEqual(['[EMAIL_1]', '[PHONE_1]', '[EMAIL_2]', '[EMAIL_1]'])
      expect(await b.tokenize(SCOPE, [email('alan'), email('grace')], [])).toEqual([
        '[EMAIL_2]',
        '[EMAIL_3]',
      ])
      expect(await b.resolve(SCOPE, ['[EMAIL_1]', '[PHONE_1]', '[EMAIL_9]', 'EMAIL_1'])).toEqual([
        { kind: 'email', value: 'ada@example.com', labels: [] },
        { kind: 'phone', value: '+1 415 555 2671', labels: [] },
        undefined,
        undefined,
      ])
      expect(await a.resolve(SCOPE, ['[EMAIL_3]'])).toEqual([
        { kind: 'email', value: 'grace@example.com', labels: [] },
      ])
      // Another scope counts on its own and cannot read the first one's tokens.
      expect(await b.tokenize(OTHER, [email('grace')], [])).toEqual(['[EMAIL_1]'])
      expect((await a.resolve(OTHER, ['[EMAIL_1]', '[EMAIL_2]']))[1]).toBeUndefined()
      expect((await a.resolve(OTHER, ['[EMAIL_1]']))[0]?.value).toBe('grace@example.com')
    })

    it('two replicas making the same new values at the same moment agree on every token', async () => {
      const { stores, vault } = await replicas()
      const racingA = counting(stores[0])
      const racingB = counting(stores[1])
      const a = vault(racingA, { maxValuesPerSession: 100 })
      const b = vault(racingB, { maxValuesPerSession: 100 })
      const items = Array.from({ length: 20 }, (_, i) => email(`user${i}`))
      for (const round of [0, 1, 2]) {
        const scope = `${round}${SCOPE.slice(1)}`
        const [fromA, fromB] = await Promise.all([
          a.tokenize(scope, items, ['a']),
          b.tokenize(scope, [...items].reverse(), ['b']),
        ])
        expect([...fromB].reverse()).toEqual(fromA)
        expect(new Set(fromA).size).toBe(items.length)
        const entries = await b.resolve(scope, fromA as string[])
        expect(entries.map((e) => e?.value)).toEqual(items.map((i) => i.value))
        // Both sources' labels joined, whichever replica won the token.
        for (const entry of entries) expect([...entry!.labels].sort()).toEqual(['a', 'b'])
      }
      // The race was real: a counter claim was lost and retried, and a replica that made a
      // token second adopted the first one's.
      const lost = (kind: string) => (racingA.lost[kind] ?? 0) + (racingB.lost[kind] ?? 0)
      expect(lost('n')).toBeGreaterThan(0)
      expect(lost('v')).toBeGreaterThan(0)
    })

    it('joins the labels of every call that produced a value, from either replica', async () => {
      const { stores, vault } = await replicas()
      const a = vault(stores[0])
      const b = vault(stores[1])
      await a.tokenize(SCOPE, [email('ada')], ['confidential'])
      await b.tokenize(SCOPE, [email('ada')], ['pii', 'confidential'])
      await Promise.all([
        a.tokenize(SCOPE, [email('ada')], ['x']),
        b.tokenize(SCOPE, [email('ada')], ['y']),
      ])
      const [entry] = await a.resolve(SCOPE, ['[EMAIL_1]'])
      expect([...entry!.labels].sort()).toEqual(['confidential', 'pii', 'x', 'y'])
    })

    it('holds maxValuesPerSession values over both replicas (N), refuses the next (N+1)', async () => {
      const { stores, vault } = await replicas()
      const a = vault(stores[0])
      const b = vault(stores[1])
      expect(await a.tokenize(SCOPE, [email('a'), email('b')], [])).toEqual([
        '[EMAIL_1]',
        '[EMAIL_2]',
      ])
      expect(await b.tokenize(SCOPE, [email('c'), email('d')], [])).toEqual([
        '[EMAIL_3]',
        undefined,
      ])
      expect(await a.tokenize(SCOPE, [email('e')], [])).toEqual([undefined])
      // A value held still gets its token, on either replica; another scope has its own room.
      expect(await b.tokenize(SCOPE, [email('a')], [])).toEqual(['[EMAIL_1]'])
      expect(await a.tokenize(OTHER, [email('d')], [])).toEqual(['[EMAIL_1]'])
    })

    it('forgets a value ttlSeconds after it was made; its number is not reused meanwhile', async () => {
      const { stores, vault } = await replicas()
      const a = vault(stores[0], { ttlSeconds: 0.5, maxValuesPerSession: 1 })
      const b = vault(stores[1], { ttlSeconds: 0.5, maxValuesPerSession: 1 })
      expect(await a.tokenize(SCOPE, [email('ada')], [])).toEqual(['[EMAIL_1]'])
      expect((await b.resolve(SCOPE, ['[EMAIL_1]']))[0]?.value).toBe('ada@example.com')
      expect(await b.tokenize(SCOPE, [email('alan')], [])).toEqual([undefined])
      await expect
        .poll(() => b.resolve(SCOPE, ['[EMAIL_1]']), { timeout: 5_000, interval: 20 })
        .toEqual([undefined])
      // Its place is free again, and the counter outlives it: the next value is number 2.
      expect(await b.tokenize(SCOPE, [email('alan')], [])).toEqual(['[EMAIL_2]'])
    })

    it('an entry moved to another token, altered, or read under another key does not open', async () => {
      const { stores, vault } = await replicas()
      const a = vault(stores[0])
      await a.tokenize(SCOPE, [email('ada'), email('mallory')], [])
      const raw = stores[1]
      const entry = (token: string) => `vault:${SCOPE}:t:${token}`
      const ada = (await raw.get(entry('[EMAIL_1]')))!
      const mallory = (await raw.get(entry('[EMAIL_2]')))!
      expect(ada).not.toContain('ada')
      // Mallory's ciphertext under Ada's token: a resolveFor call would mail Mallory.
      await raw.put(entry('[EMAIL_1]'), mallory, 60_000)
      await expectUnreadable(a.resolve(SCOPE, ['[EMAIL_1]']))
      // The same ciphertext under the same token of another scope.
      await raw.put(`vault:${OTHER}:t:[EMAIL_2]`, mallory, 60_000)
      await expectUnreadable(a.resolve(OTHER, ['[EMAIL_2]']))
      // One character of the ciphertext changed.
      const flipped = ada.slice(0, -2) + (ada.at(-2) === 'A' ? 'B' : 'A') + ada.at(-1)
      await raw.put(entry('[EMAIL_1]'), flipped, 60_000)
      await expectUnreadable(a.resolve(SCOPE, ['[EMAIL_1]']))
      // A value's token pointed at another's: the index is sealed to its key too.
      const cipher = new VaultCipher(KEY)
      const index = (value: string) => `vault:${SCOPE}:v:${cipher.mac(SCOPE, 'email', value)}`
      await raw.put(
        index('ada@example.com'),
        (await raw.get(index('mallory@example.com')))!,
        60_000,
      )
      await expectUnreadable(a.tokenize(SCOPE, [email('ada')], []))
      // A replica with another key reads nothing the first one wrote.
      await raw.put(entry('[EMAIL_1]'), ada, 60_000)
      const wrongKey = new StoreVault({
        store: stores[1],
        key: randomBytes(32),
        ttlSeconds: 60,
        maxValuesPerSession: 3,
      })
      await expectUnreadable(wrongKey.resolve(SCOPE, ['[EMAIL_1]']))
      expect((await a.resolve(SCOPE, ['[EMAIL_1]']))[0]?.value).toBe('ada@example.com')
    })

    it('gives up after the attempts with VAULT_CONTENDED and frees the place it took', async () => {
      const { stores, vault } = await replicas()
      let counterSwaps = 0
      const hostile: VaultStore = {
        get: (key) => stores[0].get(key),
        take: (key) => stores[0].take(key),
        hold: (key, member, max, ms) => stores[0].hold(key, member, max, ms),
        release: (key, member) => stores[0].release(key, member),
        // Every counter swap loses, as if other replicas always got there first.
        async swap(key, expected, value, ttlMs) {
          if (!key.endsWith(':n')) return stores[0].swap(key, expected, value, ttlMs)
          counterSwaps++
          return false
        },
      }
      const stuck = vault(hostile, { maxSwapAttempts: 3, maxValuesPerSession: 1 })
      const error = await stuck.tokenize(SCOPE, [email('ada')], []).catch((e: unknown) => e)
      expect(isSluiceError(error, 'VAULT_CONTENDED')).toBe(true)
      expect((error as Error).message).toContain('3 compare-and-set attempts')
      expect((error as Error).message).not.toContain('ada')
      expect(counterSwaps).toBe(3)
      // The place is free: a healthy replica holds the one value this session may have.
      expect(
        await vault(stores[1], { maxValuesPerSession: 1 }).tokenize(SCOPE, [email('alan')], []),
      ).toEqual(['[EMAIL_1]'])
      expect(VAULT_SWAP_ATTEMPTS).toBe(16)
    })

    it('refuses a scope that is not a digest: no identity in a store key', async () => {
      const { stores, vault } = await replicas()
      await expect(
        vault(stores[0]).tokenize('alice@example.com', [email('a')], []),
      ).rejects.toThrow(TypeError)
      await expect(vault(stores[0]).resolve('a:b', [])).rejects.toThrow(TypeError)
    })
  })
}

async function expectUnreadable(promise: Promise<unknown>): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isSluiceError(error, 'VAULT_UNREADABLE')).toBe(true)
  expect((error as Error).message).not.toMatch(/example\.com|EMAIL_/)
}

contract('StoreVault on the in-process store', async () => {
  const store = new MemoryStore()
  return [store, store]
})

describe('StoreVault on the in-process store, with the clock moved', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('a token resolves until ttlSeconds after it was made (N ms), not at N (expired)', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'performance'] })
    const store = new MemoryStore()
    const vault = new StoreVault({ store, key: KEY, ttlSeconds: 60, maxValuesPerSession: 1 })
    expect(await vault.tokenize(SCOPE, [email('ada')], [])).toEqual(['[EMAIL_1]'])
    vi.advanceTimersByTime(59_999)
    expect((await vault.resolve(SCOPE, ['[EMAIL_1]']))[0]?.value).toBe('ada@example.com')
    // Seeing it again neither extends it nor makes room.
    expect(await vault.tokenize(SCOPE, [email('ada'), email('alan')], ['late'])).toEqual([
      '[EMAIL_1]',
      undefined,
    ])
    vi.advanceTimersByTime(1)
    expect(await vault.resolve(SCOPE, ['[EMAIL_1]'])).toEqual([undefined])
    // The number is not reused while the counter lives, two TTLs from the last value made…
    expect(await vault.tokenize(SCOPE, [email('alan')], [])).toEqual(['[EMAIL_2]'])
    vi.advanceTimersByTime(60_000)
    expect(await vault.resolve(SCOPE, ['[EMAIL_2]'])).toEqual([undefined])
    vi.advanceTimersByTime(59_999)
    expect(await vault.tokenize(SCOPE, [email('grace')], [])).toEqual(['[EMAIL_3]'])
    // …and once every value and the counter are gone, the scope counts from 1 again.
    const counter = `vault:${SCOPE}:n`
    vi.advanceTimersByTime(119_999)
    expect(await vault.resolve(SCOPE, ['[EMAIL_3]'])).toEqual([undefined])
    expect(await store.get(counter)).toBeDefined()
    vi.advanceTimersByTime(1)
    expect(await store.get(counter)).toBeUndefined()
    expect(await vault.tokenize(SCOPE, [email('ada')], [])).toEqual(['[EMAIL_1]'])
  })
})

describe.skipIf(!hasRedis)('StoreVault on a real redis-server', () => {
  const redisStores = useRedisStores({ commandTimeoutMs: 1000 })
  const connect = redisStores.connect

  contract('two replicas on one Redis', async (prefix) => [
    await connect(prefix),
    await connect(prefix),
  ])

  it('keeps no value, label or scope-free name in Redis, and a TTL on every key', async () => {
    const a = new StoreVault({
      store: await connect('plain:'),
      key: KEY,
      ttlSeconds: 60,
      maxValuesPerSession: 10,
    })
    await a.tokenize(SCOPE, [email('ada'), { kind: 'ssn', value: '123-45-6789' }], ['secretlabel'])
    const client = createClient({ url: redisStores.redis.url })
    await client.connect()
    try {
      const keys = await client.keys('plain:*')
      expect(keys.length).toBeGreaterThanOrEqual(5)
      for (const key of keys) {
        expect(key).not.toMatch(/ada|example|123-45|secretlabel/)
        expect(key.startsWith(`plain:vault:${SCOPE}`) || key === `plain:hold:vault:${SCOPE}`).toBe(
          true,
        )
        const ttl = await client.pTTL(key)
        expect(ttl).toBeGreaterThan(0)
        expect(ttl).toBeLessThanOrEqual(120_000)
        const type = await client.type(key)
        const content =
          type === 'string'
            ? String(await client.get(key))
            : (await client.zRange(key, 0, -1)).join(' ')
        expect(content).not.toMatch(/ada|example|123-45|6789|secretlabel/)
      }
    } finally {
      client.destroy()
    }
  })
})
