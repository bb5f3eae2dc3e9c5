/**
 * The prebuilt fuel-rewritten module (src/sandbox/fuel-artefact.ts): used only when its manifest
 * names the same recipe and its bytes hash to the manifest; missing, stale or corrupt falls back
 * to the rewrite at start with a warning naming why. Every test writes into its own temporary
 * folder, never into the package.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  FUEL_ARTEFACT_FILE,
  FUEL_MANIFEST_FILE,
  fuelRecipe,
  loadFuelArtefact,
  writeFuelArtefact,
} from '../../src/sandbox/fuel-artefact.js'
import {
  currentRecipe,
  fuelProduct,
  quickjsWasmBytes,
  rewriteNow,
} from '../../src/sandbox/quickjs-module.js'

const raw = quickjsWasmBytes()
const rewritten = rewriteNow(raw)
const recipe = currentRecipe(raw)

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-fuel-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

function warnings() {
  const seen: { message: string; code: string }[] = []
  return {
    seen,
    warn: (message: string, o: { code: string }) => seen.push({ message, code: o.code }),
  }
}

describe('the fuel artefact', () => {
  it('round-trips: written, then loaded as the same bytes and facts, with no warning', () => {
    const manifest = writeFuelArtefact(dir, recipe, rewritten)
    expect(manifest).toMatchObject({ format: 1, recipe, bytes: rewritten.bytes.length })
    const loaded = loadFuelArtefact(dir, recipe)
    expect(loaded.ok).toBe(true)
    if (!loaded.ok) return
    expect(Buffer.from(loaded.product.bytes).equals(Buffer.from(rewritten.bytes))).toBe(true)
    expect(loaded.product.sites).toBe(rewritten.sites)
    expect(loaded.product.skippedInterpreterLoop).toBe(true)
    const w = warnings()
    const product = fuelProduct({ dir, warn: w.warn })
    expect(Buffer.from(product.bytes).equals(Buffer.from(rewritten.bytes))).toBe(true)
    expect(w.seen).toEqual([])
  })

  it('missing: SLUICE_FUEL_ARTEFACT_MISSING, and the module is rewritten at start', () => {
    const loaded = loadFuelArtefact(dir, recipe)
    expect(loaded).toEqual({
      ok: false,
      code: 'SLUICE_FUEL_ARTEFACT_MISSING',
      message: `sluice: no prebuilt fuel-rewritten QuickJS module in ${dir} (run \`npm run build\`); rewriting it at start`,
    })
    const w = warnings()
    const product = fuelProduct({ dir, warn: w.warn, missingIsExpected: false })
    expect(Buffer.from(product.bytes).equals(Buffer.from(rewritten.bytes))).toBe(true)
    expect(w.seen.map((s) => s.code)).toEqual(['SLUICE_FUEL_ARTEFACT_MISSING'])
    // Running from source, no build is expected: no warning then.
    const quiet = warnings()
    fuelProduct({ dir, warn: quiet.warn, missingIsExpected: true })
    expect(quiet.seen).toEqual([])
  })

  it('stale (another QuickJS module, other options or another rewriter): SLUICE_FUEL_ARTEFACT_STALE', () => {
    writeFuelArtefact(dir, recipe, rewritten)
    const otherModule = fuelRecipe(raw.subarray(0, raw.length - 1), {}, [])
    const otherOptions = currentRecipe(raw).replace(/^./, (c) => (c === '0' ? '1' : '0'))
    for (const other of [otherModule, otherOptions]) {
      expect(loadFuelArtefact(dir, other)).toEqual({
        ok: false,
        code: 'SLUICE_FUEL_ARTEFACT_STALE',
        message: `sluice: the prebuilt fuel-rewritten QuickJS module in ${dir} was made from another QuickJS module or rewriter (run \`npm run build\`); rewriting it at start`,
      })
    }
    // The recipe moves with each of its inputs.
    const base = fuelRecipe(raw, { a: 1 }, ['x'])
    expect(fuelRecipe(raw, { a: 2 }, ['x'])).not.toBe(base)
    expect(fuelRecipe(raw, { a: 1 }, ['y'])).not.toBe(base)
    const patched = new Uint8Array(raw)
    patched[patched.length - 1] = patched[patched.length - 1]! ^ 1
    expect(fuelRecipe(patched, { a: 1 }, ['x'])).not.toBe(base)
    // A manifest of another format is stale too.
    const manifest = JSON.parse(readFileSync(join(dir, FUEL_MANIFEST_FILE), 'utf8'))
    writeFileSync(join(dir, FUEL_MANIFEST_FILE), JSON.stringify({ ...manifest, format: 2 }))
    const w = warnings()
    fuelProduct({ dir, warn: w.warn })
    expect(w.seen.map((s) => s.code)).toEqual(['SLUICE_FUEL_ARTEFACT_STALE'])
  })

  it('corrupt (bytes changed after the build, or a manifest that is not JSON): SLUICE_FUEL_ARTEFACT_CORRUPT', () => {
    writeFuelArtefact(dir, recipe, rewritten)
    const tampered = new Uint8Array(rewritten.bytes)
    tampered[tampered.length - 5] = tampered[tampered.length - 5]! ^ 0xff
    writeFileSync(join(dir, FUEL_ARTEFACT_FILE), tampered)
    expect(loadFuelArtefact(dir, recipe)).toEqual({
      ok: false,
      code: 'SLUICE_FUEL_ARTEFACT_CORRUPT',
      message: `sluice: the prebuilt fuel-rewritten QuickJS module in ${dir} is corrupt (${FUEL_ARTEFACT_FILE} does not match its manifest); rewriting it at start`,
    })
    const w = warnings()
    const product = fuelProduct({ dir, warn: w.warn })
    // Never the tampered bytes: the module is rewritten from the shipped one.
    expect(Buffer.from(product.bytes).equals(Buffer.from(rewritten.bytes))).toBe(true)
    expect(w.seen.map((s) => s.code)).toEqual(['SLUICE_FUEL_ARTEFACT_CORRUPT'])
    writeFileSync(join(dir, FUEL_MANIFEST_FILE), '{ not json')
    expect(loadFuelArtefact(dir, recipe)).toEqual({
      ok: false,
      code: 'SLUICE_FUEL_ARTEFACT_CORRUPT',
      message: `sluice: the prebuilt fuel-rewritten QuickJS module in ${dir} is corrupt (${FUEL_MANIFEST_FILE} is not JSON); rewriting it at start`,
    })
  })

  it('the build made one for dist/ that is current and equal to a rewrite now', () => {
    const distDir = join(dirname(fileURLToPath(import.meta.url)), '../../dist/src/sandbox')
    // `npm test` builds first; a bare `vitest run` without a build has nothing to check here.
    if (!existsSync(join(distDir, FUEL_MANIFEST_FILE))) return
    const loaded = loadFuelArtefact(distDir, currentRecipe(raw, distDir, '.js'))
    expect(loaded.ok).toBe(true)
    if (!loaded.ok) return
    expect(Buffer.from(loaded.product.bytes).equals(Buffer.from(rewritten.bytes))).toBe(true)
  })
})
