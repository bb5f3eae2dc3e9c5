/**
 * `gateway.heapGrowthPercent` (src/cli/heap.ts): its default and bounds at N and N+1, and what
 * it does: V8 starts each full collection at `1 + N/100` times the heap the last one kept
 * (read from V8's own trace in a child process, not from timings).
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { applyHeapGrowth } from '../../src/cli/heap.js'
import { DEFAULT_HEAP_GROWTH_PERCENT, parseConfig } from '../../src/config/index.js'
import { SluiceError } from '../../src/errors.js'

const growth = (n: unknown) =>
  parseConfig({ gateway: { heapGrowthPercent: n } }).gateway.heapGrowthPercent

function refusal(n: unknown): string {
  try {
    growth(n)
  } catch (e) {
    expect(e).toBeInstanceOf(SluiceError)
    return (e as SluiceError).message
  }
  throw new Error('expected CONFIG_INVALID')
}

const HEAP_TS = fileURLToPath(new URL('../../src/cli/heap.ts', import.meta.url))

/**
 * The factors V8 used at each full collection of a child that applies `percent` and then
 * churns through old-generation garbage (V8's `--trace-gc-verbose` lines).
 */
function factorsWith(percent: number): string[] {
  const script = `
    const { applyHeapGrowth } = await import(${JSON.stringify(HEAP_TS)})
    applyHeapGrowth(${percent})
    const keep = []
    for (let round = 0; round < 40; round++) {
      keep.length = 0
      for (let i = 0; i < 100_000; i++) keep.push({ i, s: 'x' + i })
    }`
  const r = spawnSync(
    process.execPath,
    ['--trace-gc-verbose', '--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  )
  expect(r.status, r.stderr).toBe(0)
  // `Limit: old size: … KB, new limit: … KB (factor)`: the factor V8 used (the `factor …` line
  // before it is the one V8 computed, which the flag overrides).
  return [...r.stdout.matchAll(/\[HeapController\] Limit: .* \((\d+\.\d)\)/g)].map((m) => m[1]!)
}

describe('gateway.heapGrowthPercent', () => {
  it('defaults to 50; 0 and 300 are accepted, -1 and 301 refused with the path named', () => {
    expect(DEFAULT_HEAP_GROWTH_PERCENT).toBe(50)
    expect(parseConfig({}).gateway.heapGrowthPercent).toBe(50)
    expect(growth(0)).toBe(0)
    expect(growth(300)).toBe(300)
    expect(refusal(301)).toBe(
      'invalid config <inline>: gateway.heapGrowthPercent: Too big: expected number to be <=300',
    )
    expect(refusal(-1)).toContain('gateway.heapGrowthPercent: Too small')
    expect(refusal(1.5)).toContain('gateway.heapGrowthPercent')
  })

  it('sets V8 --heap-growing-percent, and leaves V8 alone at 0', () => {
    const flags: string[] = []
    applyHeapGrowth(50, (f) => flags.push(f))
    applyHeapGrowth(0, (f) => flags.push(f))
    expect(flags).toEqual(['--heap-growing-percent=50'])
    expect(() => applyHeapGrowth(-1, () => undefined)).toThrow(TypeError)
  })

  it('V8 then starts each full collection at 1 + N/100 times what the last one kept', () => {
    for (const [percent, factor] of [
      [50, '1.5'],
      [150, '2.5'],
      [0, '4.0'],
    ] as const) {
      const factors = factorsWith(percent)
      // The collections after the flag is set (the first ones may come before, at start-up).
      expect(factors.length).toBeGreaterThanOrEqual(4)
      expect(factors.slice(-3)).toEqual([factor, factor, factor])
    }
  })
})
