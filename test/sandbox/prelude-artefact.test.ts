/**
 * The prebuilt guest prelude (src/sandbox/prelude-artefact.ts): used only when its header names
 * the recipe of the shipped source and the script's hash; missing, stale or corrupt falls back
 * to the transform at start with a warning naming why. Tests write into temporary folders only.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  loadPreludeArtefact,
  PRELUDE_ARTEFACT_FILE,
  writePreludeArtefact,
} from '../../src/sandbox/prelude-artefact.js'
import {
  currentPreludeRecipe,
  preludeJs,
  preludeSource,
  transformPrelude,
} from '../../src/sandbox/quickjs-module.js'

const source = preludeSource()
const js = transformPrelude(source)
const recipe = currentPreludeRecipe(source)

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-prelude-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

function warnings() {
  const seen: string[] = []
  return { seen, warn: (_message: string, o: { code: string }) => seen.push(o.code) }
}

describe('the prelude artefact', () => {
  it('round-trips with no warning', () => {
    writePreludeArtefact(dir, recipe, js)
    expect(loadPreludeArtefact(dir, recipe)).toEqual({ ok: true, js })
    const w = warnings()
    expect(preludeJs({ dir, warn: w.warn })).toBe(js)
    expect(w.seen).toEqual([])
  })

  it('missing: SLUICE_PRELUDE_ARTEFACT_MISSING (silent when running from source)', () => {
    expect(loadPreludeArtefact(dir, recipe)).toEqual({
      ok: false,
      code: 'SLUICE_PRELUDE_ARTEFACT_MISSING',
      message: `sluice: no prebuilt guest prelude in ${dir} (run \`npm run build\`); transforming runtime/prelude.ts at start`,
    })
    const w = warnings()
    expect(preludeJs({ dir, warn: w.warn, missingIsExpected: false })).toBe(js)
    expect(w.seen).toEqual(['SLUICE_PRELUDE_ARTEFACT_MISSING'])
    const quiet = warnings()
    preludeJs({ dir, warn: quiet.warn, missingIsExpected: true })
    expect(quiet.seen).toEqual([])
  })

  it('stale (made from another prelude source): SLUICE_PRELUDE_ARTEFACT_STALE', () => {
    const other = currentPreludeRecipe(`${source}\n// changed\n`)
    expect(other).not.toBe(recipe)
    writePreludeArtefact(dir, other, 'globalThis.stale = true')
    expect(loadPreludeArtefact(dir, recipe)).toEqual({
      ok: false,
      code: 'SLUICE_PRELUDE_ARTEFACT_STALE',
      message: `sluice: the prebuilt guest prelude in ${dir} was made from another runtime/prelude.ts (run \`npm run build\`); transforming it at start`,
    })
    const w = warnings()
    expect(preludeJs({ dir, warn: w.warn })).toBe(js)
    expect(w.seen).toEqual(['SLUICE_PRELUDE_ARTEFACT_STALE'])
  })

  it('corrupt (script edited after the build, or no header): SLUICE_PRELUDE_ARTEFACT_CORRUPT', () => {
    writePreludeArtefact(dir, recipe, js)
    const path = join(dir, PRELUDE_ARTEFACT_FILE)
    writeFileSync(path, `${readFileSync(path, 'utf8')}\nglobalThis.extra = 1`)
    expect(loadPreludeArtefact(dir, recipe)).toEqual({
      ok: false,
      code: 'SLUICE_PRELUDE_ARTEFACT_CORRUPT',
      message: `sluice: the prebuilt guest prelude in ${dir} is corrupt (the script does not match its header); transforming runtime/prelude.ts at start`,
    })
    const w = warnings()
    expect(preludeJs({ dir, warn: w.warn })).toBe(js)
    expect(w.seen).toEqual(['SLUICE_PRELUDE_ARTEFACT_CORRUPT'])
    writeFileSync(path, js)
    expect(loadPreludeArtefact(dir, recipe)).toEqual({
      ok: false,
      code: 'SLUICE_PRELUDE_ARTEFACT_CORRUPT',
      message: `sluice: the prebuilt guest prelude in ${dir} is corrupt (its first line is not a sluice prelude header); transforming runtime/prelude.ts at start`,
    })
  })

  it('the build made one for dist/ that is current and equal to a transform now', () => {
    const distDir = join(dirname(fileURLToPath(import.meta.url)), '../../dist/src/sandbox')
    if (!existsSync(join(distDir, PRELUDE_ARTEFACT_FILE))) return
    expect(loadPreludeArtefact(distDir, recipe)).toEqual({ ok: true, js })
  })
})
