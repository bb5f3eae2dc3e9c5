/**
 * What every worker of the process shares: the QuickJS WebAssembly module, rewritten (fuel
 * checks, a smaller memory minimum) and compiled once, and the guest prelude as JavaScript.
 * Both are made once per process and handed to each worker (a compiled module is shared, not
 * copied, when posted).
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { transform } from 'sucrase'
import { CLOCK_IMPORT } from './clock.js'
import { addFuel, type FuelResult } from './fuel.js'
import { INITIAL_PAGES } from './memory.js'
import type { CompiledWasm } from './messages.js'
import { withMemoryMinimum } from './wasm-binary.js'

/**
 * Loop iterations and calls between two clock checks. At a few nanoseconds each, the clock is
 * asked every 10–50 µs of busy work: cheap, and a guest stops within that of its deadline.
 */
export const FUEL_STEPS_PER_CHECK = 10_000

/** The slice of the WebAssembly JS API used here (Node's types declare only part of it). */
const wasmApi = (
  globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<CompiledWasm> } }
).WebAssembly

const here = dirname(fileURLToPath(import.meta.url))

export interface SharedModule {
  wasmModule: CompiledWasm
  preludeJs: string
  /** Function entries and loop headers that count fuel. */
  fuelSites: number
}

let shared: Promise<SharedModule> | undefined

/** The process's module and prelude, made on first use. */
export function sharedModule(): Promise<SharedModule> {
  shared ??= load().catch((e: unknown) => {
    shared = undefined
    throw e
  })
  return shared
}

/** The QuickJS module's bytes, as shipped by the variant package. */
export function quickjsWasmBytes(): Uint8Array {
  return readFileSync(
    createRequire(import.meta.url).resolve('@jitl/quickjs-wasmfile-release-sync/wasm'),
  )
}

/** The rewrite the sandbox runs (the bench measures exactly this one). */
export function fuelled(raw: Uint8Array): FuelResult {
  return addFuel(raw, {
    clock: CLOCK_IMPORT,
    stepsPerCheck: FUEL_STEPS_PER_CHECK,
    skipInterpreterLoop: true,
  })
}

async function load(): Promise<SharedModule> {
  const rewritten = fuelled(quickjsWasmBytes())
  if (!rewritten.skippedInterpreterLoop) {
    // Still bounded (every loop counts), only slower: worth knowing after a QuickJS update.
    process.emitWarning('sluice: the QuickJS interpreter loop was not found; it counts fuel too')
  }
  const wasmModule = await wasmApi.compile(withMemoryMinimum(rewritten.bytes, INITIAL_PAGES))
  return { wasmModule, preludeJs: preludeJs(), fuelSites: rewritten.sites }
}

function findPrelude(): string {
  // src/sandbox → ../../runtime; dist/src/sandbox → ../../../runtime
  for (const up of ['../..', '../../..']) {
    const p = join(here, up, 'runtime', 'prelude.ts')
    if (existsSync(p)) return p
  }
  throw new Error('sluice: runtime/prelude.ts not found next to the package')
}

/** The prelude as a script whose value is its `install` function. */
function preludeJs(): string {
  const source = readFileSync(findPrelude(), 'utf8')
  const js = transform(source, {
    transforms: ['typescript', 'imports'],
    disableESTransforms: true,
  }).code
  return `(function () {\nvar exports = {};\n${js}\nreturn exports.install;\n})()`
}
