/**
 * The type checker loads the TypeScript compiler (~260 ms and ~40 MB), which only failed
 * executions and binding checks need. These wrappers load it on first use, so a gateway, a
 * `sluice run` and every CLI command start without it.
 *
 * @module
 */
import type { Diagnostic } from '../types.js'
import type { TypecheckOptions } from './typecheck.js'

/** Diagnostics attached to one execution unless `maxDiagnostics` says otherwise. */
export const DEFAULT_MAX_DIAGNOSTICS = 10

let checker: Promise<typeof import('./typecheck.js')> | undefined
const load = () => (checker ??= import('./typecheck.js'))

/** Type-checks model code (an async function body) against tool declarations. */
export async function typecheckCode(
  code: string,
  dts: string,
  options?: TypecheckOptions,
): Promise<Diagnostic[]> {
  return (await load()).typecheckCode(code, dts, options)
}

/** Compiles a declarations file on its own and returns its errors (a guard for generated text). */
export async function checkDeclarations(dts: string): Promise<Diagnostic[]> {
  return (await load()).checkDeclarations(dts)
}
