/**
 * Build step (`npm run build`, after `tsc`): rewrites the shipped QuickJS module with fuel checks
 * and writes it, with its manifest, beside the compiled sandbox (fuel-artefact.ts), and the guest
 * prelude as the script the workers evaluate (prelude-artefact.ts). Run only
 * from the compiled output (`node dist/src/sandbox/build-fuel-artefact.js`): from source it would
 * write into the source tree, so it refuses.
 *
 * @module
 */
import { writeFuelArtefact } from './fuel-artefact.js'
import { writePreludeArtefact } from './prelude-artefact.js'
import {
  ARTEFACT_DIR,
  currentPreludeRecipe,
  currentRecipe,
  preludeSource,
  quickjsWasmBytes,
  rewriteNow,
  transformPrelude,
} from './quickjs-module.js'

const wasm = globalThis as unknown as { WebAssembly: { validate(bytes: Uint8Array): boolean } }

if (import.meta.url.endsWith('.ts')) {
  process.stderr.write(
    'sluice: build-fuel-artefact runs from the compiled output (node dist/src/sandbox/build-fuel-artefact.js), not from source\n',
  )
  process.exit(2)
}
const raw = quickjsWasmBytes()
const product = rewriteNow(raw)
if (!wasm.WebAssembly.validate(product.bytes)) {
  process.stderr.write('sluice: the fuel-rewritten QuickJS module does not validate\n')
  process.exit(1)
}
const manifest = writeFuelArtefact(ARTEFACT_DIR, currentRecipe(raw), product)
const source = preludeSource()
writePreludeArtefact(ARTEFACT_DIR, currentPreludeRecipe(source), transformPrelude(source))
process.stdout.write(
  `prelude artefact: ${source.length} source characters; fuel artefact: ${manifest.bytes} bytes, ${manifest.sites} fuel sites, sha256 ${manifest.sha256.slice(0, 16)}…\n`,
)
