/**
 * Where the QuickJS module keeps the top of its heap, so that a memory is scrubbed only up to it.
 *
 * emscripten lays a module's linear memory out as static data, then the stack, then a heap that
 * `sbrk` grows upwards; nothing is ever written above the current break. Zeroing a retired
 * memory therefore only needs `[0, break)`: ≈5.5 MiB for a typical execution instead of the
 * 16 MiB the module declares, and reading the untouched rest evicted the caches every run.
 *
 * The break lives in a static variable whose address the module does not export. It is found by
 * experiment on a throwaway instance: allocate, fill, free and allocate again from guest code,
 * and keep the one word in static data that (a) grew with each allocation, (b) is at or above
 * every non-zero byte each time, and (c) did not shrink when the memory was freed (so the
 * allocator never gives memory back, and the break is a high-water mark). Anything but exactly
 * one such word leaves the caller scrubbing whole memories.
 *
 * @module
 */
import type { QuickJSContext } from 'quickjs-emscripten-core'
import { bufferOf, isZero, ZERO_CHECK_MAX_BYTES } from './zeroes.js'

/** Static data sits in the first pages; the break variable is there. */
const STATIC_SCAN_BYTES = 256 * 1024
/** Larger than the free space a fresh context's heap has, so each one moves the break. */
const FIRST_BYTES = 1024 * 1024
const SECOND_BYTES = 2 * 1024 * 1024

/**
 * Finds the address of the heap break in a fresh, otherwise unused context over `memory`;
 * undefined when the experiment does not single one word out. The context is left dirty.
 */
export function findHeapTopAddress(ctx: QuickJSContext, memory: Uint8Array): number | undefined {
  const words = () =>
    new Uint32Array(memory.buffer, memory.byteOffset, STATIC_SCAN_BYTES / 4).slice()
  const run = (code: string) => ctx.unwrapResult(ctx.evalCode(code)).dispose()

  const before = words()
  run(`globalThis.a = new Uint8Array(${FIRST_BYTES}).fill(1); 0`)
  const grown = words()
  const dirtyTop = highestNonZero(memory)
  run('globalThis.a = null; 0')
  const freed = words()
  run(`globalThis.b = new Uint8Array(${SECOND_BYTES}).fill(1); 0`)
  const regrown = words()
  const dirtyTop2 = highestNonZero(memory)

  const found: number[] = []
  for (let i = 0; i < grown.length; i++) {
    const g = grown[i]!
    // The break moves by the allocation less what was free at the top of the heap.
    if (g - before[i]! < FIRST_BYTES / 2 || g < dirtyTop || g > memory.byteLength) continue
    if (freed[i] !== g) continue
    if (regrown[i]! < dirtyTop2 || regrown[i]! > memory.byteLength) continue
    found.push(i * 4)
  }
  return found.length === 1 ? found[0] : undefined
}

/** The break recorded in `memory`, if it is a plausible one, rounded up to `align` bytes. */
export function heapTop(memory: Uint8Array, address: number, align: number): number | undefined {
  const top = new Uint32Array(memory.buffer, memory.byteOffset + address, 1)[0]!
  if (top <= address || top > memory.byteLength) return undefined
  return Math.min(memory.byteLength, Math.ceil(top / align) * align)
}

/** One past the last non-zero byte. */
function highestNonZero(memory: Uint8Array): number {
  const view = bufferOf(memory)
  let end = view.length
  // Whole zero chunks first, then byte by byte inside the last dirty one.
  while (end > 0) {
    const start = Math.max(0, end - ZERO_CHECK_MAX_BYTES)
    if (!isZero(view, start, end)) break
    end = start
  }
  while (end > 0 && view[end - 1] === 0) end--
  return end
}
