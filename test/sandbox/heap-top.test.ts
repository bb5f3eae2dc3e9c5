/**
 * The heap-top probe (src/sandbox/heap-top.ts) against the real QuickJS module: it singles out
 * the break, and the break stays at or above every byte any workload writes, which is what lets
 * a scrub stop there.
 */
import { describe, expect, it } from 'vitest'
import { findHeapTopAddress, heapTop } from '../../src/sandbox/heap-top.js'
import { freshModule } from './quickjs.js'

async function freshContext() {
  const { module, memory } = await freshModule()
  return { ctx: module.newRuntime().newContext(), memory }
}

function highestNonZero(memory: Uint8Array): number {
  let end = memory.length
  while (end > 0 && memory[end - 1] === 0) end--
  return end
}

const WORKLOADS = [
  'let s = "secret-".repeat(400000); s = null; 1',
  'globalThis.keep = Array.from({ length: 50000 }, (_, i) => ({ i, s: "v" + i })); 1',
  'globalThis.keep = null; let b = new Uint8Array(5 * 1024 * 1024).fill(9); b = null; 1',
  'const parts = []; for (let i = 0; i < 200; i++) parts.push(new ArrayBuffer(16384)); parts.length',
  'let big = "y".repeat(3e6) + "END"; big.length',
]

describe('heap top', () => {
  it('singles out one address, and the break it holds bounds every write of any workload', async () => {
    const probe = await freshContext()
    const address = findHeapTopAddress(probe.ctx, probe.memory)
    expect(address).toBeTypeOf('number')

    // The address is static: it holds the break in any instance of the module.
    const { ctx, memory } = await freshContext()
    for (const code of WORKLOADS) {
      ctx.unwrapResult(ctx.evalCode(code)).dispose()
      const top = heapTop(memory, address!, 1)!
      expect(top).toBeGreaterThanOrEqual(highestNonZero(memory))
      expect(top).toBeLessThan(memory.length)
    }
  })

  it('rounds the break up to the chunk size, and refuses an implausible one', () => {
    const memory = new Uint8Array(1 << 20)
    const view = new DataView(memory.buffer)
    view.setUint32(64, 300_001, true)
    expect(heapTop(memory, 64, 65536)).toBe(327_680)
    view.setUint32(64, (1 << 20) + 1, true)
    expect(heapTop(memory, 64, 65536)).toBeUndefined()
    view.setUint32(64, 10, true)
    expect(heapTop(memory, 64, 65536)).toBeUndefined()
  })
})
