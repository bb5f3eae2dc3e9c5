/**
 * The real QuickJS module for tests below the pool: a fresh WASM instance over a fresh memory,
 * built the way the worker builds one.
 */
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSSyncVariant,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core'
import variantImport from '@jitl/quickjs-wasmfile-release-sync'

const variant: QuickJSSyncVariant =
  (variantImport as unknown as { default?: QuickJSSyncVariant }).default ??
  (variantImport as unknown as QuickJSSyncVariant)
/** The slice of the WebAssembly JS API used here (Node's types declare only part of it). */
const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (bytes: Uint8Array) => object
      Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer }
    }
  }
).WebAssembly
const wasmModule = new wasm.Module(
  readFileSync(createRequire(import.meta.url).resolve('@jitl/quickjs-wasmfile-release-sync/wasm')),
)

/** A new instance of the compiled module in its own 16 MiB memory, and a view of that memory. */
export async function freshModule(): Promise<{ module: QuickJSWASMModule; memory: Uint8Array }> {
  const wasmMemory = new wasm.Memory({ initial: 256, maximum: 32768 })
  const module = await newQuickJSWASMModuleFromVariant(
    newVariant(variant, { wasmModule: wasmModule as never, wasmMemory: wasmMemory as never }),
  )
  return { module, memory: new Uint8Array(wasmMemory.buffer) }
}
