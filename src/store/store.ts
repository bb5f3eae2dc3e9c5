/**
 * State that must hold across requests and across replicas, behind one interface with two
 * implementations: in-process (the default: embedded, nothing to set up, one process only) and
 * Redis (`store: { redis: { url } }`: any replica sees the same state).
 *
 * @module
 */

/** The answer of a token-bucket take: a token was spent, or when the next one is due. */
export type RateAnswer = { ok: true } | { ok: false; retryAfterMs: number }

/** The answer of a `hold`: whether the member is held now, and how many the set holds. */
export interface HoldAnswer {
  held: boolean
  count: number
}

export interface SharedStore {
  /** `memory` or `redis`, for logs and `/readyz`. */
  readonly kind: 'memory' | 'redis'
  /**
   * Token bucket `key` holding at most `perMinute` tokens, refilled continuously. With
   * `take`, spends one token when there is one; without, only looks. Atomic across replicas.
   * Rejects with `SluiceError('STORE_UNAVAILABLE')` when the store cannot answer in time. An
   * in-process store answers synchronously, so admission keeps call order without a tick.
   */
  takeToken(key: string, perMinute: number, take: boolean): RateAnswer | Promise<RateAnswer>
  /**
   * Keeps `value` under `key` for `ttlMs` (replacing what was there). Rejects with
   * `STORE_UNAVAILABLE` when the store cannot answer, or (in-process) holds
   * {@link MEMORY_STORE_MAX_CHARS} already.
   */
  put(key: string, value: string, ttlMs: number): Promise<void>
  /**
   * Returns the value under `key` and deletes it in the same step, so of two replicas taking one
   * key only one gets it; undefined when there is none or it expired.
   */
  take(key: string): Promise<string | undefined>
  /** The value under `key`, left in place; undefined when there is none or it expired. */
  get(key: string): Promise<string | undefined>
  /**
   * Compare-and-set: replaces the value under `key` with `value` (for `ttlMs`) only when it is
   * `expected` now (`undefined`: only when there is none). True when it replaced it. Of two
   * replicas swapping from the same value, one wins.
   */
  swap(key: string, expected: string | undefined, value: string, ttlMs: number): Promise<boolean>
  /**
   * A set of members whose membership runs out: holds `member` in set `key` for `holdMs` from
   * now (renewing it when it is held already), unless `max` other members are held. A member
   * whose hold ran out is dropped, so a holder that dies frees its place without a goodbye.
   */
  hold(key: string, member: string, max: number, holdMs: number): Promise<HoldAnswer>
  /** Whether `member`'s hold in set `key` is still running. */
  isHeld(key: string, member: string): Promise<boolean>
  /** Drops `member` from set `key` (nothing when it is not there). */
  release(key: string, member: string): Promise<void>
  /**
   * Sends `message` to every subscriber of `channel`, in this process and (Redis) on every
   * replica. Fire and forget: a subscriber that is disconnected misses it.
   */
  publish(channel: string, message: string): Promise<void>
  /**
   * Calls `listener` with every message published on `channel` from now on; resolves once
   * subscribed, with the function that unsubscribes.
   */
  subscribe(channel: string, listener: (message: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

/** Buckets untouched this long are full again and forgotten (memory) or expire (Redis). */
export const BUCKET_IDLE_MS = 120_000

/** What the in-process store holds at most of `put` values, in UTF-16 code units: 256 Mi. */
export const MEMORY_STORE_MAX_CHARS = 256 * 1024 * 1024
