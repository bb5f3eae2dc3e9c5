/**
 * The fuel-rewritten QuickJS module as a build artefact: `npm run build` rewrites the shipped
 * module once (build-fuel-artefact.ts) and writes the result next to the compiled sandbox, so a
 * process start reads it instead of spending 20–40 ms on the rewrite.
 *
 * The artefact lives inside the package (`dist/src/sandbox/`), written only at build time, never
 * in a cache folder at run time: it is exactly as trusted as the compiled code beside it. It is
 * used only when its manifest matches what a rewrite at start would produce from the same
 * inputs (the recipe: the shipped module's SHA-256, the rewrite's options, and the SHA-256 of
 * the rewriter's own code as it sits beside this file) and its bytes hash to what the manifest
 * says. Anything else (missing, stale after a QuickJS update or a rebuild without this step,
 * corrupt) falls back to the rewrite at start, which is always correct, with a warning naming why.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const FUEL_ARTEFACT_FILE = 'quickjs-fuel.wasm'
export const FUEL_MANIFEST_FILE = 'quickjs-fuel.json'
/** The manifest's format; a manifest of another format is stale. */
const MANIFEST_FORMAT = 1

/** Why an artefact was not used (the code of the process warning that says so). */
export type FuelArtefactProblem =
  'SLUICE_FUEL_ARTEFACT_MISSING' | 'SLUICE_FUEL_ARTEFACT_STALE' | 'SLUICE_FUEL_ARTEFACT_CORRUPT'

export interface FuelManifest {
  format: number
  /** SHA-256 of everything the rewrite depends on (see {@link fuelRecipe}). */
  recipe: string
  /** SHA-256 of the artefact's bytes. */
  sha256: string
  bytes: number
  sites: number
  skippedInterpreterLoop: boolean
}

/** What the rewrite produced: the bytes to compile, and the facts the sandbox reports. */
export interface FuelProduct {
  bytes: Uint8Array
  sites: number
  skippedInterpreterLoop: boolean
}

export type FuelArtefactLoad =
  { ok: true; product: FuelProduct } | { ok: false; code: FuelArtefactProblem; message: string }

const sha256 = (bytes: Uint8Array | string): string =>
  createHash('sha256').update(bytes).digest('hex')

/**
 * The recipe's hash: the shipped module, the rewrite's options, and the rewriter's code (every
 * file whose change could change the output). Computed the same way at build and at start.
 */
export function fuelRecipe(
  raw: Uint8Array,
  options: unknown,
  rewriterSources: readonly string[],
): string {
  const h = createHash('sha256')
  h.update(`sluice-fuel-${MANIFEST_FORMAT}\n`)
  h.update(sha256(raw))
  h.update(`\n${JSON.stringify(options)}\n`)
  for (const source of rewriterSources) h.update(`${sha256(source)}\n`)
  return h.digest('hex')
}

/** Writes the artefact and its manifest into `dir` (each through a temporary file and a rename). */
export function writeFuelArtefact(dir: string, recipe: string, product: FuelProduct): FuelManifest {
  const manifest: FuelManifest = {
    format: MANIFEST_FORMAT,
    recipe,
    sha256: sha256(product.bytes),
    bytes: product.bytes.length,
    sites: product.sites,
    skippedInterpreterLoop: product.skippedInterpreterLoop,
  }
  const put = (name: string, data: Uint8Array | string) => {
    const tmp = join(dir, `.${name}.${process.pid}.tmp`)
    writeFileSync(tmp, data)
    renameSync(tmp, join(dir, name))
  }
  // The module first: a manifest never names bytes that are not there yet.
  put(FUEL_ARTEFACT_FILE, product.bytes)
  put(FUEL_MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`)
  return manifest
}

/** Reads the artefact in `dir` when it is the product of `recipe`, else says why not. */
export function loadFuelArtefact(dir: string, recipe: string): FuelArtefactLoad {
  const manifestPath = join(dir, FUEL_MANIFEST_FILE)
  const wasmPath = join(dir, FUEL_ARTEFACT_FILE)
  if (!existsSync(manifestPath) || !existsSync(wasmPath)) {
    return {
      ok: false,
      code: 'SLUICE_FUEL_ARTEFACT_MISSING',
      message: `sluice: no prebuilt fuel-rewritten QuickJS module in ${dir} (run \`npm run build\`); rewriting it at start`,
    }
  }
  let manifest: Partial<FuelManifest>
  try {
    manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Partial<FuelManifest>
  } catch {
    return corrupt(dir, `${FUEL_MANIFEST_FILE} is not JSON`)
  }
  if (manifest.format !== MANIFEST_FORMAT || manifest.recipe !== recipe) {
    return {
      ok: false,
      code: 'SLUICE_FUEL_ARTEFACT_STALE',
      message: `sluice: the prebuilt fuel-rewritten QuickJS module in ${dir} was made from another QuickJS module or rewriter (run \`npm run build\`); rewriting it at start`,
    }
  }
  const bytes = new Uint8Array(readFileSync(wasmPath))
  if (
    typeof manifest.sites !== 'number' ||
    typeof manifest.skippedInterpreterLoop !== 'boolean' ||
    bytes.length !== manifest.bytes ||
    sha256(bytes) !== manifest.sha256
  ) {
    return corrupt(dir, `${FUEL_ARTEFACT_FILE} does not match its manifest`)
  }
  return {
    ok: true,
    product: {
      bytes,
      sites: manifest.sites,
      skippedInterpreterLoop: manifest.skippedInterpreterLoop,
    },
  }
}

function corrupt(dir: string, why: string): FuelArtefactLoad {
  return {
    ok: false,
    code: 'SLUICE_FUEL_ARTEFACT_CORRUPT',
    message: `sluice: the prebuilt fuel-rewritten QuickJS module in ${dir} is corrupt (${why}); rewriting it at start`,
  }
}
