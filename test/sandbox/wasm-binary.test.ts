/**
 * The memory-minimum rewrite (src/sandbox/wasm-binary.ts): the shipped QuickJS module, rewritten,
 * is still valid, as long as before, and declares the new minimum (the sandbox's instances run on
 * it: test/sandbox/pool.test.ts); a minimum too wide for the module's encoding, or a module
 * without an imported memory, is refused with a message.
 */
import { describe, expect, it } from 'vitest'
import { INITIAL_PAGES, PAGE_BYTES } from '../../src/sandbox/memory.js'
import { quickjsWasmBytes } from '../../src/sandbox/quickjs-module.js'
import {
  memoryMinimum,
  WasmRewriteError,
  withMemoryMinimum,
} from '../../src/sandbox/wasm-binary.js'

const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      validate(bytes: Uint8Array): boolean
    }
  }
).WebAssembly

describe('withMemoryMinimum', () => {
  const raw = quickjsWasmBytes()

  it('rewrites the QuickJS module (256 pages) down to the sandbox minimum, keeping its size', () => {
    expect(memoryMinimum(raw)).toBe(256)
    const rewritten = withMemoryMinimum(raw, INITIAL_PAGES)
    expect(rewritten.length).toBe(raw.length)
    expect(memoryMinimum(rewritten)).toBe(INITIAL_PAGES)
    expect(wasm.validate(rewritten)).toBe(true)
    // The original is untouched (it is a Buffer: a view would have changed it too).
    expect(memoryMinimum(raw)).toBe(256)
    expect(INITIAL_PAGES * PAGE_BYTES).toBe(6 * 1024 * 1024)
  })

  it('fits a minimum up to what the width holds (2 bytes: 16383), and refuses one more', () => {
    expect(memoryMinimum(withMemoryMinimum(raw, 16383))).toBe(16383)
    expect(() => withMemoryMinimum(raw, 16384)).toThrow(
      new WasmRewriteError(
        'a memory minimum of 16384 pages does not fit the 2 bytes the module gives it',
      ),
    )
    expect(() => withMemoryMinimum(raw, 0)).toThrow(
      new WasmRewriteError(
        'a memory minimum of 0 pages does not fit the 2 bytes the module gives it',
      ),
    )
  })

  it('refuses a module that does not import its memory', () => {
    // (module (import "a" "p" (func)))
    const noMemory = new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 1, 4, 1, 0x60, 0, 0, 2, 7, 1, 1, 0x61, 1,
      0x70, 0x00, 0,
    ])
    expect(wasm.validate(noMemory)).toBe(true)
    expect(() => withMemoryMinimum(noMemory, 96)).toThrow(
      new WasmRewriteError('the module does not import its memory'),
    )
  })
})
