/**
 * The in-process store: the default. Exact for one process; every replica counts on its own.
 *
 * @module
 */
import { SluiceError } from '../errors.js'
import {
  BUCKET_IDLE_MS,
  MEMORY_STORE_MAX_CHARS,
  type RateAnswer,
  type SharedStore,
} from './store.js'

interface Bucket {
  tokens: number
  at: number
}

/** Past this many buckets, idle ones are swept on the next take. */
const SWEEP_AT = 1024

export class MemoryStore implements SharedStore {
  readonly kind = 'memory'
  readonly #buckets = new Map<string, Bucket>()
  readonly #values = new Map<string, { value: string; expiresAt: number }>()
  #valueChars = 0
  readonly #maxChars: number

  /** `maxChars`: the bound on held values, default {@link MEMORY_STORE_MAX_CHARS}. */
  constructor(options: { maxChars?: number } = {}) {
    this.#maxChars = options.maxChars ?? MEMORY_STORE_MAX_CHARS
  }

  takeToken(key: string, perMinute: number, take: boolean): RateAnswer {
    const now = performance.now()
    const perMs = perMinute / 60_000
    if (this.#buckets.size >= SWEEP_AT) {
      for (const [k, b] of this.#buckets) if (now - b.at > BUCKET_IDLE_MS) this.#buckets.delete(k)
    }
    const bucket = this.#buckets.get(key) ?? { tokens: perMinute, at: now }
    bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.at) * perMs)
    bucket.at = now
    this.#buckets.set(key, bucket)
    if (bucket.tokens >= 1) {
      if (take) bucket.tokens -= 1
      return { ok: true }
    }
    return { ok: false, retryAfterMs: Math.ceil((1 - bucket.tokens) / perMs) }
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    const now = performance.now()
    for (const [k, v] of this.#values) if (v.expiresAt <= now) this.#drop(k)
    this.#drop(key)
    if (this.#valueChars + value.length > this.#maxChars) {
      throw new SluiceError(
        'STORE_UNAVAILABLE',
        `the in-process store is full: it holds ${this.#valueChars} of ${this.#maxChars} characters; configure store.redis for more`,
      )
    }
    this.#values.set(key, { value, expiresAt: now + ttlMs })
    this.#valueChars += value.length
  }

  async take(key: string): Promise<string | undefined> {
    const held = this.#values.get(key)
    if (held === undefined) return undefined
    this.#drop(key)
    return held.expiresAt > performance.now() ? held.value : undefined
  }

  #drop(key: string): void {
    const held = this.#values.get(key)
    if (held === undefined) return
    this.#values.delete(key)
    this.#valueChars -= held.value.length
  }

  async close(): Promise<void> {
    this.#buckets.clear()
    this.#values.clear()
    this.#valueChars = 0
  }
}
