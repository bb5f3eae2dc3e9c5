/**
 * Reconnect backoff: the first retry after a failure is immediate (a crash mid-call should not
 * cost the next call anything), later ones grow exponentially with jitter up to a cap.
 *
 * @module
 */

/** First non-zero delay before reconnecting, after the second consecutive failure. */
export const DEFAULT_INITIAL_BACKOFF_MS = 100
/** Cap of the reconnect delay. */
export const DEFAULT_MAX_BACKOFF_MS = 5_000

export interface BackoffOptions {
  initialBackoffMs?: number
  maxBackoffMs?: number
  /** Source of randomness in [0, 1); tests pin it. */
  random?: () => number
}

/**
 * Delay before the next connect attempt after `failures` consecutive failures: 0 for the first,
 * then `initial · 2^(failures-2)` capped at `max`, with "equal jitter" (between half and all of it).
 */
export function backoffDelayMs(failures: number, options: BackoffOptions = {}): number {
  if (failures <= 1) return 0
  const initial = options.initialBackoffMs ?? DEFAULT_INITIAL_BACKOFF_MS
  const max = options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS
  // Bound the exponent so 2^n never overflows into Infinity for a server that fails for days.
  const base = Math.min(max, initial * 2 ** Math.min(failures - 2, 30))
  const random = options.random ?? Math.random
  return Math.round(base / 2 + (random() * base) / 2)
}
