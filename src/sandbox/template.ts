/**
 * Instance templates: build a sandbox's runtime, context and prelude once per worker, then stamp
 * the result into each fresh WASM instance instead of building it again.
 *
 * Building them costs ≈2.5 ms per instance, most of it QuickJS compiling the prelude, and it is
 * the same work every time: deterministic C code over a zeroed linear memory. So the first
 * instance of a worker is built normally while its calls into the WASM module (the FFI) are
 * recorded, and the memory pages it wrote are kept. Every later instance is still a brand-new
 * WASM instance with its own memory; that memory, zeroed, receives the template's pages, and the
 * same library calls are run again with each FFI call answered from the recording. The library's
 * JavaScript objects (runtime, context, handles) are thereby rebuilt around the pointers that the
 * stamped memory already holds, at the cost of copying ≈250 KiB.
 *
 * The template never runs model code: it is taken before the first execution exists. A replay
 * whose calls differ from the recording throws {@link TemplateMismatch}, and the caller builds
 * the instance the slow way. The FFI functions are swapped only for the span of one synchronous
 * build, so concurrent instances cannot interleave.
 *
 * @module
 */
import { bufferOf, isZero } from './zeroes.js'

/** Granularity of the page copy; 4 KiB keeps the stamp at the ≈60 pages QuickJS really writes. */
const PAGE_BYTES = 4096

interface TapeEntry {
  readonly name: string
  readonly args: readonly unknown[]
  /** For a call that takes a buffer the library just allocated: the bytes it held. */
  readonly buffer?: Uint8Array
  readonly result: unknown
}

/**
 * Arguments that point at a buffer the library allocates for the call (the source text of
 * `QTS_Eval`): its address depends on the heap at that moment, which a stamped memory does not
 * reproduce, so a replay compares the buffer's bytes instead of its address.
 */
const BUFFER_ARGS: Readonly<Record<string, { pointer: number; length: number }>> = {
  QTS_Eval: { pointer: 1, length: 2 },
}

/** A recorded build: the FFI calls it made and the memory pages it left non-zero. */
export interface Template {
  readonly tape: readonly TapeEntry[]
  readonly pages: readonly { readonly offset: number; readonly bytes: Uint8Array }[]
  /** Bytes copied by each stamp. */
  readonly bytes: number
}

/** A replay's FFI calls did not match the recording. */
export class TemplateMismatch extends Error {
  override readonly name = 'TemplateMismatch'
}

type FfiFunction = (...args: unknown[]) => unknown
/** The module's FFI object: its `QTS_*` functions are own properties, set by its constructor. */
type Ffi = Record<string, unknown>

/**
 * Runs `build` with some of `ffi`'s functions replaced, and puts the originals back afterwards
 * (so executions call the FFI directly, with nothing in between).
 */
function withFfi<T>(
  ffi: Ffi,
  names: readonly string[],
  wrap: (name: string, real: FfiFunction) => FfiFunction,
  build: () => T,
): T {
  const originals = new Map<string, FfiFunction>()
  for (const name of names) {
    const real = ffi[name]
    if (typeof real !== 'function') throw new TemplateMismatch(`the FFI has no function ${name}`)
    originals.set(name, real as FfiFunction)
    ffi[name] = wrap(name, real as FfiFunction)
  }
  try {
    return build()
  } finally {
    for (const [name, real] of originals) ffi[name] = real
  }
}

/**
 * Runs `build` on a freshly instantiated module (its FFI `ffi`, its memory `memory`, which was
 * zero before the instantiation), recording its FFI calls, and returns its value with the
 * template.
 */
export function record<T>(
  ffi: object,
  memory: Uint8Array,
  build: () => T,
): { value: T; template: Template } {
  // Pages the instantiation itself wrote: a replayed instance gets them from the template too.
  const touched = nonZeroPages(memory)
  const tape: TapeEntry[] = []
  const names = Object.keys(ffi).filter(
    (name) => name.startsWith('QTS_') && typeof (ffi as Ffi)[name] === 'function',
  )
  const value = withFfi(
    ffi as Ffi,
    names,
    (name, real) =>
      (...args) => {
        const buffer = bufferArg(memory, name, args)
        const result = real(...args)
        tape.push(
          buffer === undefined
            ? { name, args, result }
            : { name, args, buffer: buffer.slice(), result },
        )
        return result
      },
    build,
  )
  for (const page of nonZeroPages(memory)) touched.add(page)
  const pages = [...touched]
    .sort((a, b) => a - b)
    .map((offset) => ({ offset, bytes: memory.slice(offset, offset + PAGE_BYTES) }))
  return { value, template: { tape, pages, bytes: pages.length * PAGE_BYTES } }
}

/**
 * Stamps the template into `memory` (that of a freshly instantiated module over a memory that
 * was zero), then runs `build` with the recorded FFI calls answered from the tape. The FFI
 * functions the template never called stay real: a build that reaches one has diverged, and
 * the count of replayed calls shows it.
 */
export function replay<T>(ffi: object, memory: Uint8Array, template: Template, build: () => T): T {
  for (const { offset, bytes } of template.pages) memory.set(bytes, offset)
  const { tape } = template
  let cursor = 0
  const names = [...new Set(tape.map((entry) => entry.name))]
  const value = withFfi(
    ffi as Ffi,
    names,
    (name) =>
      (...args) => {
        const at = cursor++
        const entry = tape[at]
        if (entry?.name !== name) {
          throw new TemplateMismatch(
            `call ${at} of the build was ${name} where the template recorded ${entry?.name ?? 'nothing more'}`,
          )
        }
        if (!sameArgs(entry, args, bufferArg(memory, name, args))) {
          throw new TemplateMismatch(
            `call ${at} of the build (${name}) had other arguments than the template's`,
          )
        }
        return entry.result
      },
    build,
  )
  if (cursor !== tape.length) {
    throw new TemplateMismatch(
      `the build made ${cursor} of the ${tape.length} FFI calls the template recorded`,
    )
  }
  return value
}

function nonZeroPages(memory: Uint8Array): Set<number> {
  const view = bufferOf(memory)
  const pages = new Set<number>()
  for (let offset = 0; offset < view.length; offset += PAGE_BYTES) {
    if (!isZero(view, offset, Math.min(view.length, offset + PAGE_BYTES))) pages.add(offset)
  }
  return pages
}

function bufferArg(
  memory: Uint8Array,
  name: string,
  args: readonly unknown[],
): Uint8Array | undefined {
  const at = BUFFER_ARGS[name]
  if (at === undefined) return undefined
  const pointer = args[at.pointer]
  const length = args[at.length]
  if (typeof pointer !== 'number' || typeof length !== 'number') return undefined
  return memory.subarray(pointer, pointer + length)
}

function sameArgs(
  entry: TapeEntry,
  actual: readonly unknown[],
  buffer: Uint8Array | undefined,
): boolean {
  const recorded = entry.args
  if (recorded.length !== actual.length) return false
  const skip = BUFFER_ARGS[entry.name]?.pointer
  for (let i = 0; i < recorded.length; i++) {
    if (i !== skip && !Object.is(recorded[i], actual[i])) return false
  }
  if (entry.buffer === undefined) return buffer === undefined
  return buffer !== undefined && Buffer.compare(entry.buffer, buffer) === 0
}
