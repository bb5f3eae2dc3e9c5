/**
 * The size of a sandbox's linear memory, shared by the module rewrite (main thread) and the
 * instances (workers).
 *
 * @module
 */

export const PAGE_BYTES = 64 * 1024

/**
 * Pages a memory starts with (6 MiB). A built instance (runtime, context, prelude) ends at
 * page 84: data, emscripten's 5 MiB stack, then QuickJS's heap. 96 leaves ≈700 KiB of heap
 * before the first growth, which most executions never reach; the module's own declaration
 * (256 pages) is rewritten down to this (wasm-binary.ts), since every byte of a memory is
 * zero-checked before it is reused.
 */
export const INITIAL_PAGES = 96

/** 2 GiB: growth is bounded by QuickJS's memory limit long before this. */
export const MAXIMUM_PAGES = 32768

/** A retired memory up to this size (16 MiB) is scrubbed and reused; a larger one is dropped. */
export const RECYCLE_MAX_BYTES = 16 * 1024 * 1024
