/**
 * The in-process store: the default. Exact for one process; every replica counts on its own.
 *
 * @module
 */
import { BUCKET_IDLE_MS, type RateAnswer, type SharedStore } from './store.js'

interface Bucket {
  tokens: number
  at: number
}

/** Past this many buckets, idle ones are swept on the next take. */
const SWEEP_AT = 1024

export class MemoryStore implements SharedStore {
  readonly kind = 'memory'
  readonly #buckets = new Map<string, Bucket>()

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

  async close(): Promise<void> {
    this.#buckets.clear()
  }
}
