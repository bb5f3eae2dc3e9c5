/**
 * The guest prelude as a build artefact: `npm run build` transforms `runtime/prelude.ts` once
 * (build-fuel-artefact.ts) into the script the workers evaluate, so a process start does not run
 * sucrase over it (30–60 ms on a cold JIT). Like the fuel artefact it lives beside the compiled
 * sandbox and is used only when its first line names the recipe of the prelude source read at
 * start (its SHA-256 with the transform's options) and the SHA-256 of the script that follows;
 * anything else falls back to the transform at start, with a warning naming why.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const PRELUDE_ARTEFACT_FILE = 'prelude.js'
const HEADER = /^\/\/ sluice prelude recipe=([0-9a-f]{64}) sha256=([0-9a-f]{64})\n/

export type PreludeArtefactProblem =
  | 'SLUICE_PRELUDE_ARTEFACT_MISSING'
  | 'SLUICE_PRELUDE_ARTEFACT_STALE'
  | 'SLUICE_PRELUDE_ARTEFACT_CORRUPT'

export type PreludeArtefactLoad =
  { ok: true; js: string } | { ok: false; code: PreludeArtefactProblem; message: string }

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** The recipe: the prelude's source and the options of its transform. */
export function preludeRecipe(source: string, options: unknown): string {
  return sha256(`sluice-prelude-1\n${JSON.stringify(options)}\n${source}`)
}

/** Writes the script into `dir` (through a temporary file and a rename). */
export function writePreludeArtefact(dir: string, recipe: string, js: string): void {
  const tmp = join(dir, `.${PRELUDE_ARTEFACT_FILE}.${process.pid}.tmp`)
  writeFileSync(tmp, `// sluice prelude recipe=${recipe} sha256=${sha256(js)}\n${js}`)
  renameSync(tmp, join(dir, PRELUDE_ARTEFACT_FILE))
}

/** Reads the script in `dir` when it is the product of `recipe`, else says why not. */
export function loadPreludeArtefact(dir: string, recipe: string): PreludeArtefactLoad {
  const path = join(dir, PRELUDE_ARTEFACT_FILE)
  if (!existsSync(path)) {
    return {
      ok: false,
      code: 'SLUICE_PRELUDE_ARTEFACT_MISSING',
      message: `sluice: no prebuilt guest prelude in ${dir} (run \`npm run build\`); transforming runtime/prelude.ts at start`,
    }
  }
  const text = readFileSync(path, 'utf8')
  const header = HEADER.exec(text)
  if (header === null) {
    return corrupt(dir, 'its first line is not a sluice prelude header')
  }
  if (header[1] !== recipe) {
    return {
      ok: false,
      code: 'SLUICE_PRELUDE_ARTEFACT_STALE',
      message: `sluice: the prebuilt guest prelude in ${dir} was made from another runtime/prelude.ts (run \`npm run build\`); transforming it at start`,
    }
  }
  const js = text.slice(header[0].length)
  if (sha256(js) !== header[2]) return corrupt(dir, 'the script does not match its header')
  return { ok: true, js }
}

function corrupt(dir: string, why: string): PreludeArtefactLoad {
  return {
    ok: false,
    code: 'SLUICE_PRELUDE_ARTEFACT_CORRUPT',
    message: `sluice: the prebuilt guest prelude in ${dir} is corrupt (${why}); transforming runtime/prelude.ts at start`,
  }
}
