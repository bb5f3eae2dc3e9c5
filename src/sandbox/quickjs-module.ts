/**
 * What every worker of the process shares: the QuickJS WebAssembly module, rewritten (fuel
 * checks, a smaller memory minimum) and compiled once, and the guest prelude as JavaScript.
 * Both are made once per process and handed to each worker (a compiled module is shared, not
 * copied, when posted). The rewrite is made at build time when it can be (fuel-artefact.ts).
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
import { fuelRecipe, loadFuelArtefact, type FuelProduct } from './fuel-artefact.js'
import { loadPreludeArtefact, preludeRecipe } from './prelude-artefact.js'
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
/** Under tsx/vitest this file is TypeScript: no build, so no prebuilt artefact is expected. */
const ownExtension = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
/** The rewriter's code: a change to either file makes a prebuilt artefact stale. */
const REWRITER_FILES = ['fuel', 'wasm-binary']

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

/** What the rewrite depends on besides the module and the rewriter's code. */
const REWRITE_OPTIONS = {
  clock: CLOCK_IMPORT,
  stepsPerCheck: FUEL_STEPS_PER_CHECK,
  skipInterpreterLoop: true,
  initialPages: INITIAL_PAGES,
}

/** The module the sandbox compiles, rewritten now: fuel checks and the smaller memory minimum. */
export function rewriteNow(raw: Uint8Array): FuelProduct {
  const rewritten = fuelled(raw)
  return {
    bytes: withMemoryMinimum(rewritten.bytes, REWRITE_OPTIONS.initialPages),
    sites: rewritten.sites,
    skippedInterpreterLoop: rewritten.skippedInterpreterLoop,
  }
}

/**
 * The recipe of the rewrite as the rewriter in `dir` would make it (`extension` is that of its
 * files: `.js` in dist/, `.ts` in src/).
 */
export function currentRecipe(raw: Uint8Array, dir = here, extension = ownExtension): string {
  return fuelRecipe(
    raw,
    REWRITE_OPTIONS,
    REWRITER_FILES.map((name) => readFileSync(join(dir, `${name}${extension}`), 'utf8')),
  )
}

/** Where the build puts the artefact: beside this file (dist/src/sandbox/). */
export const ARTEFACT_DIR = here

export interface FuelProductOptions {
  /** Where to look for the artefact (default: beside this file). */
  dir?: string
  /** Whether a missing artefact is expected (running from source), so not worth a warning. */
  missingIsExpected?: boolean
  warn?: (message: string, options: { code: string }) => void
}

/**
 * The rewritten module: the build's artefact when it is current, else rewritten now, with a
 * warning that names why (SLUICE_FUEL_ARTEFACT_MISSING, _STALE or _CORRUPT).
 */
export function fuelProduct(options: FuelProductOptions = {}): FuelProduct {
  const dir = options.dir ?? ARTEFACT_DIR
  const warn = options.warn ?? ((message, o) => process.emitWarning(message, o))
  const raw = quickjsWasmBytes()
  const loaded = loadFuelArtefact(dir, currentRecipe(raw))
  if (loaded.ok) return loaded.product
  const expected =
    loaded.code === 'SLUICE_FUEL_ARTEFACT_MISSING' &&
    (options.missingIsExpected ?? ownExtension === '.ts')
  if (!expected) warn(loaded.message, { code: loaded.code })
  return rewriteNow(raw)
}

async function load(): Promise<SharedModule> {
  const product = fuelProduct()
  if (!product.skippedInterpreterLoop) {
    // Still bounded (every loop counts), only slower: worth knowing after a QuickJS update.
    process.emitWarning('sluice: the QuickJS interpreter loop was not found; it counts fuel too')
  }
  const compiling = wasmApi.compile(product.bytes)
  const prelude = preludeJs()
  return { wasmModule: await compiling, preludeJs: prelude, fuelSites: product.sites }
}

function findPrelude(): string {
  // src/sandbox → ../../runtime; dist/src/sandbox → ../../../runtime
  for (const up of ['../..', '../../..']) {
    const p = join(here, up, 'runtime', 'prelude.ts')
    if (existsSync(p)) return p
  }
  throw new Error('sluice: runtime/prelude.ts not found next to the package')
}

const PRELUDE_TRANSFORM = {
  transforms: ['typescript', 'imports'] as ('typescript' | 'imports')[],
  disableESTransforms: true,
}

/** The prelude's TypeScript source, as the package ships it. */
export function preludeSource(): string {
  return readFileSync(findPrelude(), 'utf8')
}

/** The recipe of the prelude script made from `source`. */
export function currentPreludeRecipe(source: string): string {
  return preludeRecipe(source, PRELUDE_TRANSFORM)
}

/** The prelude as a script whose value is its `install` function, transformed now. */
export function transformPrelude(source: string): string {
  const js = transform(source, PRELUDE_TRANSFORM).code
  return `(function () {\nvar exports = {};\n${js}\nreturn exports.install;\n})()`
}

/**
 * The prelude script: the build's artefact when it was made from the shipped source, else
 * transformed now, with a warning that names why (SLUICE_PRELUDE_ARTEFACT_MISSING, _STALE or
 * _CORRUPT).
 */
export function preludeJs(options: FuelProductOptions = {}): string {
  const dir = options.dir ?? ARTEFACT_DIR
  const warn = options.warn ?? ((message, o) => process.emitWarning(message, o))
  const source = preludeSource()
  const loaded = loadPreludeArtefact(dir, currentPreludeRecipe(source))
  if (loaded.ok) return loaded.js
  const expected =
    loaded.code === 'SLUICE_PRELUDE_ARTEFACT_MISSING' &&
    (options.missingIsExpected ?? ownExtension === '.ts')
  if (!expected) warn(loaded.message, { code: loaded.code })
  return transformPrelude(source)
}
