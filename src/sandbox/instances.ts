/**
 * The life of QuickJS instances inside one worker: build, hand out, retire, scrub, rebuild.
 *
 * Each execution gets a brand-new WebAssembly instance of the (fuel-instrumented) module in its
 * own linear memory, with its own clock (clock.ts). A finished instance is never disposed: it
 * is dropped whole and its memory zero-filled before any reuse, which costs less than QuickJS
 * freeing every object one by one and cannot go wrong half-way. A memory that grew, or whose
 * instance was poisoned (an abort, the deadline unwinding it, any host-level exception), is
 * dropped rather than reused.
 *
 * Building runtime, context and prelude is the same deterministic work every time, so the first
 * instance records it and later ones are stamped from that template (template.ts). When a
 * stamp fails, the worker says so once (`onTemplateFailure`) and builds in full from then on;
 * the pool replaces the worker.
 *
 * Clean-up runs off the critical path: the result is sent first, then one small step of scrub
 * or rebuild per `setImmediate`, so a request arriving meanwhile waits for at most one step.
 * Memories are recycled rather than allocated: each new memory is external memory to V8,
 * and allocating one per execution made garbage collection the largest cost of a run.
 *
 * What an instance still costs the worker's scavenges is V8's own: a bare `new
 * WebAssembly.Instance` of this module, dropped at once, leaves ≈20 KiB per instance that
 * survives scavenges until the next mark-compact (the engine's per-instance objects outlive
 * the instance in the young generation). Cutting the link from the instance's imports to the
 * glue at retirement changed nothing measurable, so it is not done.
 *
 * @module
 */
import {
  QuickJSWASMModule,
  type EmscriptenModuleLoader,
  type QuickJSContext,
  type QuickJSEmscriptenModule,
  type QuickJSHandle,
  type QuickJSRuntime,
} from 'quickjs-emscripten-core'
import emscriptenImport from '@jitl/quickjs-wasmfile-release-sync/emscripten-module'
import { QuickJSFFI } from '@jitl/quickjs-wasmfile-release-sync/ffi'
import { InstanceClock, withClock, type ModuleImports } from './clock.js'
import { record, replay, TemplateMismatch, type Template } from './template.js'
import { bufferOf, isZero, ZERO_CHECK_MAX_BYTES } from './zeroes.js'
import type { CompiledWasm } from './messages.js'
import { INITIAL_PAGES, MAXIMUM_PAGES, RECYCLE_MAX_BYTES } from './memory.js'

/** Zeroed memories kept for reuse, and retired ones queued for zeroing, each at most. */
const SPARE_MEMORIES = 2
/** Scrub granularity: a chunk that compares equal to zeros is left alone (and uncommitted). */
const SCRUB_CHUNK_BYTES = ZERO_CHECK_MAX_BYTES
/** Bytes examined per step: ≈0.15 ms of work, so a request arriving meanwhile hardly waits. */
const SCRUB_STEP_BYTES = 4 * 1024 * 1024
const PRELUDE_FILE = 'sluice-prelude.js'

/** The slice of the WebAssembly JS API used here (Node's types declare only part of it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer
}
const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (d: { initial: number; maximum: number }) => WasmMemory
      Instance: new (module: CompiledWasm, imports: ModuleImports) => { exports: unknown }
    }
  }
).WebAssembly

// The package's types describe its CommonJS shape; under ESM the loader is the default export.
const loadEmscriptenModule: EmscriptenModuleLoader<QuickJSEmscriptenModule> =
  (emscriptenImport as unknown as { default?: EmscriptenModuleLoader<QuickJSEmscriptenModule> })
    .default ?? (emscriptenImport as unknown as EmscriptenModuleLoader<QuickJSEmscriptenModule>)

export interface Instance {
  id: string
  memory: WasmMemory
  clock: InstanceClock
  rt: QuickJSRuntime
  ctx: QuickJSContext
  /** The prelude's `install` function. */
  install: QuickJSHandle
  inspection?: {
    recycledFrom?: string
    nonZeroBytesBeforeInstantiation: number
    scrubbedBytes?: number
  }
}

export interface InstanceOptions {
  workerId: string
  wasmModule: CompiledWasm
  preludeJs: string
  defaultStackBytes: number
  /** Ready instances kept for the next execution. */
  prewarm: number
  /** Stamp instances from a template (off after a template failure anywhere in the pool). */
  templates: boolean
  /** Record memory evidence (tests): costs a 16 MiB scan per instance. */
  inspectMemory: boolean
  /** Test hook: the first stamp fails as if the library had changed its calls. */
  faultTemplateReplay: boolean
  /** Called once, the first time a stamp fails; instances are built in full from then on. */
  onTemplateFailure(reason: string): void
  /** Whether an execution is running (clean-up then yields more often). */
  busy(): boolean
}

interface ScrubJob {
  memory: WasmMemory
  offset: number
}

/** Builds, hands out and recycles the instances of one worker. */
export class Instances {
  readonly #options: InstanceOptions
  readonly #warm: Instance[] = []
  readonly #spare: WasmMemory[] = []
  readonly #scrubbing: ScrubJob[] = []
  /** Which instance last used a memory, for the inspection hook. */
  readonly #lastUser = new WeakMap<WasmMemory, string>()
  #template: Template | null | undefined
  #counter = 0
  #creating = 0
  #scheduled = false

  constructor(options: InstanceOptions) {
    this.#options = options
    if (!options.templates) this.#template = null
  }

  /** A ready instance, or one built now. */
  async take(): Promise<Instance> {
    const ready = this.#warm.shift()
    this.#schedule()
    return ready ?? this.#create()
  }

  /** Puts back an instance that never ran model code (its memory is still as built). */
  giveBack(instance: Instance): void {
    this.#warm.unshift(instance)
  }

  /** Hands an instance to the clean-up; its memory is scrubbed before any reuse. */
  retire(instance: Instance, poisoned: boolean): void {
    const { memory } = instance
    // A memory whose instance failed at host level is dropped, never reused; so is a large one,
    // which would cost more to scrub than a new memory costs to make.
    if (!poisoned && memory.buffer.byteLength <= RECYCLE_MAX_BYTES) {
      // Under saturation the oldest is dropped unscrubbed (freed by the GC), so the backlog stays bounded.
      if (this.#scrubbing.length >= SPARE_MEMORIES) this.#scrubbing.shift()
      this.#scrubbing.push({ memory, offset: 0 })
    }
    this.#schedule()
  }

  /** Fills the ready list (used at boot, after the warm-up run). */
  prewarm(): void {
    this.#schedule()
  }

  get ready(): number {
    return this.#warm.length
  }

  async #create(): Promise<Instance> {
    const recycled = this.#takeMemory()
    const memory = recycled ?? new wasm.Memory({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES })
    const id = `${this.#options.workerId}-i${++this.#counter}`
    let inspection: Instance['inspection']
    if (this.#options.inspectMemory) {
      const from = recycled === undefined ? undefined : this.#lastUser.get(recycled)
      inspection = {
        nonZeroBytesBeforeInstantiation: countNonZero(memory),
        ...(from === undefined
          ? {}
          : { recycledFrom: from, scrubbedBytes: memory.buffer.byteLength }),
      }
    }
    this.#lastUser.set(memory, id)
    const clock = new InstanceClock()
    const compiled = this.#options.wasmModule
    // The emscripten glue is called directly, not through the library's `newVariant` and
    // `newQuickJSWASMModuleFromVariant`: those resolve four dynamic imports and wrap the loader
    // per instance, which tripled the JS garbage of an instance and what scavenges found alive.
    const emscripten = await loadEmscriptenModule({
      wasmMemory: memory as never,
      // Our own instantiation, so that each instance gets its own clock import.
      instantiateWasm(imports, onSuccess) {
        const instance = new wasm.Instance(compiled, withClock(imports as ModuleImports, clock))
        onSuccess(instance as never)
        return instance.exports as never
      },
    })
    emscripten.type = 'sync'
    const module = new QuickJSWASMModule(emscripten, new QuickJSFFI(emscripten))
    const build = (): Pick<Instance, 'rt' | 'ctx' | 'install'> => {
      const rt = module.newRuntime()
      rt.setMaxStackSize(this.#options.defaultStackBytes)
      const ctx = rt.newContext()
      const install = ctx.unwrapResult(ctx.evalCode(this.#options.preludeJs, PRELUDE_FILE))
      return { rt, ctx, install }
    }
    const bytes = new Uint8Array(memory.buffer)
    const ffi = module.getFFI()
    let built: Pick<Instance, 'rt' | 'ctx' | 'install'>
    if (this.#template === undefined) {
      const recorded = record(ffi, bytes, build)
      this.#template = recorded.template
      built = recorded.value
    } else if (this.#template === null) {
      built = build()
    } else {
      try {
        if (this.#options.faultTemplateReplay)
          throw new TemplateMismatch('a fault injected by a test')
        built = replay(ffi, bytes, this.#template, build)
      } catch (e) {
        // Whatever went wrong, this memory is inconsistent: drop it and build the slow way.
        this.#template = null
        this.#options.onTemplateFailure(e instanceof Error ? e.message : String(e))
        return this.#create()
      }
    }
    return { id, memory, clock, ...built, ...(inspection === undefined ? {} : { inspection }) }
  }

  /**
   * A zeroed memory for a new instance: a spare one, else one whose scrub is finished now (under
   * saturation that is cheaper than a new memory and the garbage collection it brings).
   */
  #takeMemory(): WasmMemory | undefined {
    const spare = this.#spare.pop()
    if (spare !== undefined) return spare
    const job = this.#scrubbing.shift()
    if (job === undefined) return undefined
    while (!scrubStep(job));
    return job.memory
  }

  #schedule(): void {
    if (this.#scheduled) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      if (this.#step()) this.#schedule()
    })
  }

  /** One step of background work, most urgent first; false when there is nothing left to do. */
  #step(): boolean {
    const short = this.#warm.length + this.#creating < this.#options.prewarm
    // While an execution runs, a ready instance is all the next one needs: scrub first.
    if (
      short &&
      (this.#spare.length > 0 || this.#scrubbing.length === 0) &&
      !this.#options.busy()
    ) {
      this.#startCreate()
      return true
    }
    const job = this.#scrubbing[0]
    if (job !== undefined) {
      if (scrubStep(job)) {
        this.#scrubbing.shift()
        // Keep the most recent ones: the next instance (LIFO) gets the memory scrubbed last.
        if (this.#spare.length >= SPARE_MEMORIES) this.#spare.shift()
        this.#spare.push(job.memory)
      }
      return true
    }
    if (short) {
      this.#startCreate()
      return true
    }
    return false
  }

  #startCreate(): void {
    this.#creating++
    this.#create()
      .then((instance) => this.#warm.push(instance))
      .catch(() => undefined)
      .finally(() => {
        this.#creating--
        this.#schedule()
      })
  }
}

/** Zeroes the next part of a memory, chunk by chunk; true when the job is done. */
function scrubStep(job: ScrubJob): boolean {
  const bytes = bufferOf(job.memory.buffer)
  const end = Math.min(bytes.length, job.offset + SCRUB_STEP_BYTES)
  for (let at = job.offset; at < end; at += SCRUB_CHUNK_BYTES) {
    const chunkEnd = Math.min(end, at + SCRUB_CHUNK_BYTES)
    if (!isZero(bytes, at, chunkEnd)) bytes.fill(0, at, chunkEnd)
  }
  job.offset = end
  return end >= bytes.length
}

function countNonZero(memory: WasmMemory): number {
  const bytes = new Uint8Array(memory.buffer)
  let n = 0
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) n++
  return n
}

/** Needles (UTF-8 or UTF-16) found in a memory: the inspection hook of the tests. */
export function findNeedles(memory: WasmMemory, needles: readonly string[]): string[] {
  const bytes = Buffer.from(memory.buffer)
  return needles.filter(
    (n) =>
      bytes.indexOf(Buffer.from(n, 'utf8')) >= 0 || bytes.indexOf(Buffer.from(n, 'utf16le')) >= 0,
  )
}
