/**
 * The garbage collector's headroom for `sluice serve`: how far V8 lets a heap grow past what the
 * last full collection kept before it starts the next one.
 *
 * V8 picks that factor itself after each full collection, from how fast the collector marks
 * beside how fast the program fills the old generation: between 1.1 and, on a machine with a
 * heap limit of 2 GiB or more, 4. A gateway under load keeps promoting the objects of requests
 * that outlive two scavenges; once the sandbox workers slow the collector down (2 cores, 8
 * workers), the factor goes to 4 and the main thread's heap steps from ≈125 MiB to ≈300 MiB
 * for a live heap of ≈65 MiB (bench/soak.js, issue 16). A fixed factor bounds it: at 50 %,
 * ≈100 MiB. The flag is the process's, so it holds for the sandbox workers' heaps too.
 *
 * @module
 */
import v8 from 'node:v8'

/**
 * Sets V8's heap growing factor to `1 + percent / 100` (`--heap-growing-percent`); 0 leaves
 * V8's own. Call once, at start; V8 reads the flag at every full collection.
 */
export function applyHeapGrowth(
  percent: number,
  setFlags: (flags: string) => void = v8.setFlagsFromString,
): void {
  if (!Number.isInteger(percent) || percent < 0)
    throw new TypeError('heapGrowthPercent must be a non-negative integer')
  if (percent === 0) return
  setFlags(`--heap-growing-percent=${percent}`)
}
