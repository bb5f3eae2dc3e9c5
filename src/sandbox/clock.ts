/**
 * The clock an instance sees, and the deadline its fuel checks enforce.
 *
 * Every QuickJS instance is instantiated with its own copy of the module's imports, in which
 * the clock import (`emscripten_date_now`, the only source of time in the module) is replaced
 * by {@link InstanceClock.now}. It serves two purposes:
 *
 * - **The deadline.** The fuel rewrite (fuel.ts) calls the clock every few thousand loop
 *   iterations or calls, wherever the module is. Past the deadline the clock throws
 *   {@link DEADLINE_PASSED}, which unwinds the WebAssembly stack to the host call that entered it.
 *   The instance is then poisoned (its C state is mid-operation) and is never used again; the
 *   thread, and every other instance, are untouched.
 * - **A coarse guest clock.** `Date.now()` and `new Date()` read {@link InstanceClock.guestNowMs},
 *   which the host moves forward only when an answer from the host arrives (a tool result), as
 *   Cloudflare Workers advance time only at I/O. Code in the guest cannot time its own work, its
 *   neighbours' or the host's in finer steps than the tool calls it makes.
 *
 * @module
 */

/** Thrown by the clock past the deadline; never reaches the guest. */
export const DEADLINE_PASSED = Object.freeze(new Error('sluice: the execution passed its deadline'))

/** The name of the module's clock import (emscripten's minified name, pinned by SBX-19). */
export const CLOCK_IMPORT = { module: 'a', name: 'p' } as const

export class InstanceClock {
  /** Epoch milliseconds after which the clock throws; `Infinity` while no execution runs. */
  deadline = Number.POSITIVE_INFINITY
  /** What the guest reads as the current time, in epoch milliseconds. */
  guestNowMs = Date.now()
  /** Set once the clock has thrown: the instance is poisoned. */
  expired = false

  /** The import itself (an arrow, so it can be handed to the module as is). */
  readonly now = (): number => {
    if (Date.now() > this.deadline) {
      this.expired = true
      throw DEADLINE_PASSED
    }
    return this.guestNowMs
  }

  /** The guest's clock catches up with real time (at the start, and at each answer). */
  tick(): void {
    this.guestNowMs = Date.now()
  }
}

/** The shape of emscripten's import object: one namespace of functions and the memory. */
export type ModuleImports = Record<string, Record<string, unknown>>

/**
 * A copy of `imports` in which the clock import is `clock.now`. Throws when the module's glue
 * no longer binds that import to `Date.now()` (a quickjs-emscripten update renamed it): sluice
 * will not run a module whose clock it does not control.
 */
export function withClock(imports: ModuleImports, clock: InstanceClock): ModuleImports {
  const namespace = imports[CLOCK_IMPORT.module]
  const original = namespace?.[CLOCK_IMPORT.name]
  if (typeof original !== 'function' || !/Date\.now\(\)/.test(String(original))) {
    throw new Error(
      `sluice: the QuickJS glue no longer binds import ${CLOCK_IMPORT.module}.${CLOCK_IMPORT.name} to Date.now(); re-pin the clock import (test/security/wasm-imports.test.ts)`,
    )
  }
  return { ...imports, [CLOCK_IMPORT.module]: { ...namespace, [CLOCK_IMPORT.name]: clock.now } }
}
