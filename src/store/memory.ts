/**
 * The in-process store: the default. Exact for one process; every replica counts on its own.
 *
 * @module
 */
import { SluiceError } from '../errors.js'
import {
  BUCKET_IDLE_MS,
  MEMORY_STORE_MAX_CHARS,
  type HoldAnswer,
  type RateAnswer,
  type SharedStore,
} from './store.js'

interface Bucket {
  tokens: number
  at: number
}

/** Past this many buckets (hold sets), idle (empty) ones are swept on the next take (hold). */
const SWEEP_AT = 1024

export class MemoryStore implements SharedStore {
  readonly kind = 'memory'
  readonly #buckets = new Map<string, Bucket>()
  readonly #values = new Map<string, { value: string; expiresAt: number }>()
  #valueChars = 0
  readonly #maxChars: number
  /** Hold sets: member → when its hold runs out. */
  readonly #holds = new Map<string, Map<string, number>>()
  readonly #channels = new Map<string, Set<(message: string) => void>>()

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
    this.#set(key, value, ttlMs)
  }

  #set(key: string, value: string, ttlMs: number): void {
    const now = performance.now()
    for (const [k, v] of this.#values) if (v.expiresAt <= now) this.#drop(k)
    const before = this.#values.get(key)?.value.length ?? 0
    if (this.#valueChars - before + value.length > this.#maxChars) {
      throw new SluiceError(
        'STORE_UNAVAILABLE',
        `the in-process store is full: it holds ${this.#valueChars} of ${this.#maxChars} characters; configure store.redis for more`,
      )
    }
    this.#drop(key)
    this.#values.set(key, { value, expiresAt: now + ttlMs })
    this.#valueChars += value.length
  }

  async get(key: string): Promise<string | undefined> {
    return this.#current(key)
  }

  #current(key: string): string | undefined {
    const held = this.#values.get(key)
    return held !== undefined && held.expiresAt > performance.now() ? held.value : undefined
  }

  async swap(
    key: string,
    expected: string | undefined,
    value: string,
    ttlMs: number,
  ): Promise<boolean> {
    // No await between the look and the set: that is what makes it atomic here.
    if (this.#current(key) !== expected) return false
    this.#set(key, value, ttlMs)
    return true
  }

  async hold(key: string, member: string, max: number, holdMs: number): Promise<HoldAnswer> {
    const now = performance.now()
    if (this.#holds.size >= SWEEP_AT) {
      for (const [k, members] of this.#holds) {
        for (const [m, until] of members) if (until <= now) members.delete(m)
        if (members.size === 0) this.#holds.delete(k)
      }
    }
    const set = this.#holds.get(key) ?? new Map<string, number>()
    for (const [m, until] of set) if (until <= now) set.delete(m)
    if (!set.has(member) && set.size >= max) return { held: false, count: set.size }
    set.set(member, now + holdMs)
    this.#holds.set(key, set)
    return { held: true, count: set.size }
  }

  async isHeld(key: string, member: string): Promise<boolean> {
    return (this.#holds.get(key)?.get(member) ?? 0) > performance.now()
  }

  async release(key: string, member: string): Promise<void> {
    const set = this.#holds.get(key)
    set?.delete(member)
    if (set?.size === 0) this.#holds.delete(key)
  }

  async publish(channel: string, message: string): Promise<void> {
    // Delivered after the publisher's own step, as a message from Redis would be.
    for (const listener of this.#channels.get(channel) ?? [])
      queueMicrotask(() => listener(message))
  }

  async subscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<() => Promise<void>> {
    // A wrapper per subscription, so one listener subscribed twice is two subscriptions.
    const own = (message: string): void => listener(message)
    const listeners = this.#channels.get(channel) ?? new Set()
    listeners.add(own)
    this.#channels.set(channel, listeners)
    return async () => {
      listeners.delete(own)
      if (listeners.size === 0) this.#channels.delete(channel)
    }
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
    this.#holds.clear()
    this.#channels.clear()
    this.#valueChars = 0
  }
}
