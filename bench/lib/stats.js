/**
 * Timing and summary helpers shared by every case: percentiles over samples, a regression slope
 * for memory growth, and the small formatting rules of the report (units always written).
 *
 * @module
 */
import { performance } from 'node:perf_hooks'

/** Nearest-rank percentile of sorted samples; `q` in [0, 1]. */
function percentile(sorted, q) {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil(q * sorted.length) - 1
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]
}

/**
 * p50/p95/p99/mean/min/max/n of samples (milliseconds unless the caller says otherwise).
 * @param {number[]} samples
 */
export function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const n = sorted.length
  const mean = n === 0 ? Number.NaN : sorted.reduce((s, x) => s + x, 0) / n
  return {
    n,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    mean,
    min: sorted[0] ?? Number.NaN,
    max: sorted[n - 1] ?? Number.NaN,
  }
}

/** Wall time of one awaited call, in milliseconds, with its value. */
export async function timed(fn) {
  const start = performance.now()
  const value = await fn()
  return { ms: performance.now() - start, value }
}

/** Least-squares slope of y over x. */
export function slope(xs, ys) {
  const n = xs.length
  if (n < 2) return 0
  const mx = xs.reduce((s, x) => s + x, 0) / n
  const my = ys.reduce((s, y) => s + y, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my)
    den += (xs[i] - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

/** A duration for the table: µs below 1 ms, then ms with 2–3 significant digits. */
export function fmtMs(ms) {
  if (ms === undefined || Number.isNaN(ms)) return '–'
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`
  if (ms < 10) return `${ms.toFixed(2)} ms`
  if (ms < 100) return `${ms.toFixed(1)} ms`
  return `${ms.toFixed(0)} ms`
}

/** `p50 / p95 / p99 (mean, n)` in one cell. */
export function fmtSummary(s) {
  return `${fmtMs(s.p50)} / ${fmtMs(s.p95)} / ${fmtMs(s.p99)} (mean ${fmtMs(s.mean)}, n=${s.n})`
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Forces a full GC when the process runs with `--expose-gc`; otherwise does nothing. */
export function forceGc() {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc()
    globalThis.gc()
  }
}
