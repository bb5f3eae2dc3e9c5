/**
 * A sandbox worker thread: owns QuickJS WASM instances and runs executions in them.
 *
 * Each execution gets a fresh WASM instance (from the compiled module the pool passes in),
 * prewarmed with runtime, context and prelude. A finished instance is never disposed: it is
 * dropped whole and its linear memory zero-filled before any reuse, which costs less than
 * QuickJS freeing every object one by one (≈0.2 ms) and cannot go wrong half-way. A memory that
 * grew, or whose instance saw an abort or any host-level exception, is dropped too. Tool calls go
 * to the main thread as messages; their answers come back as JSON text.
 *
 * The driver rules of research/quickjs-measurements.md §4 apply: pump jobs after every resolve,
 * keep a wall-clock timer (a guest parked on a never-settling promise never reaches the
 * interrupt handler). The rule on disposing deferreds before the context is moot: nothing is
 * disposed.
 *
 * @module
 */
import { randomFillSync } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSDeferredPromise,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSSyncVariant,
} from 'quickjs-emscripten-core'
import variantImport from '@jitl/quickjs-wasmfile-release-sync'
import { transform } from 'sucrase'
import type { GuestOptions, RunEnvelope } from '../../runtime/protocol.js'
import type { FromWorker, ToWorker, WorkerBoot, WorkerDone } from './messages.js'
import { findHeapTopAddress, heapTop } from './heap-top.js'
import { record, replay, TemplateMismatch, type Template } from './template.js'
import { transpile, type TranspileResult } from './transpile.js'
import { bufferOf, isZero, ZERO_CHECK_MAX_BYTES } from './zeroes.js'
import type { SandboxError, SandboxLimits } from './types.js'

const PAGE_BYTES = 64 * 1024
/** The module declares 256 pages (16 MiB) at least; recycled memories must still be that size. */
const INITIAL_PAGES = 256
/** 2 GiB: growth is bounded by QuickJS's memory limit long before this. */
const MAXIMUM_PAGES = 32768
/** Zeroed memories kept for reuse, and retired ones queued for zeroing, each at most. */
const SPARE_MEMORIES = 4
/** Jobs run between two checks of the result promise and the clock. */
const JOB_BATCH = 256
const MODEL_FILE = 'model.ts'
const PRELUDE_FILE = 'sluice-prelude.js'
/** Shares the body's first line, so line numbers in guest-visible stacks match the model's. */
const WRAP_HEAD = '(async function () {'
const WRAP_TAIL = '\n})'

/** The slice of the WebAssembly JS API used here (Node's types declare only part of it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer
}
const WasmMemoryCtor = (
  globalThis as unknown as {
    WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => WasmMemory }
  }
).WebAssembly.Memory

// The package's types describe its CommonJS shape; under ESM the variant is the default export.
const variantBase: QuickJSSyncVariant =
  (variantImport as unknown as { default?: QuickJSSyncVariant }).default ??
  (variantImport as unknown as QuickJSSyncVariant)

const boot = workerData as WorkerBoot
// Messages travel on a dedicated channel (a little cheaper per hop than parentPort).
const port = boot.port ?? parentPort!

function send(message: FromWorker): void {
  port.postMessage(message)
}

const preludeJs = (() => {
  const js = transform(boot.preludeSource, {
    transforms: ['typescript', 'imports'],
    disableESTransforms: true,
  }).code
  return `(function () {\nvar exports = {};\n${js}\nreturn exports.install;\n})()`
})()

// ── memories and instances ────────────────────────────────────────────────────────────────

const spareMemories: WasmMemory[] = []
/** Which instance last used a memory, and how much its scrub examined, for the inspection hook. */
const lastUser = new WeakMap<WasmMemory, string>()
const lastScrubBytes = new WeakMap<WasmMemory, number>()
let instanceCounter = 0

interface Instance {
  id: string
  memory: WasmMemory
  rt: QuickJSRuntime
  ctx: QuickJSContext
  install: QuickJSHandle
  inspection?: { recycledFrom?: string; nonZeroBytesBeforeInstantiation: number }
}

function countNonZero(memory: WasmMemory): number {
  const bytes = new Uint8Array(memory.buffer)
  let n = 0
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) n++
  return n
}

function findNeedles(memory: WasmMemory, needles: readonly string[]): string[] {
  const bytes = Buffer.from(memory.buffer)
  return needles.filter(
    (n) =>
      bytes.indexOf(Buffer.from(n, 'utf8')) >= 0 || bytes.indexOf(Buffer.from(n, 'utf16le')) >= 0,
  )
}

/**
 * The worker's instance template (see template.ts): recorded by the first instance, stamped into
 * every later one; `null` once a replay failed, after which instances are built in full.
 */
let template: Template | null | undefined

async function createInstance(): Promise<Instance> {
  const recycled = takeRecycledMemory()
  const memory = recycled ?? new WasmMemoryCtor({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES })
  const id = `${boot.workerId}-i${++instanceCounter}`
  let inspection: Instance['inspection']
  if (boot.inspectMemory) {
    const from = recycled === undefined ? undefined : lastUser.get(recycled)
    const scrubbedBytes = recycled === undefined ? undefined : lastScrubBytes.get(recycled)
    inspection = {
      nonZeroBytesBeforeInstantiation: countNonZero(memory),
      ...(from === undefined ? {} : { recycledFrom: from }),
      ...(scrubbedBytes === undefined ? {} : { scrubbedBytes }),
    }
  }
  lastUser.set(memory, id)
  const module = await newQuickJSWASMModuleFromVariant(
    newVariant(variantBase, { wasmModule: boot.wasmModule as never, wasmMemory: memory as never }),
  )
  // Replayed FFI calls ignore their arguments: a replay evaluates an empty string instead of
  // copying the prelude's text into the memory for nothing.
  const build = (source: string) => (): Pick<Instance, 'rt' | 'ctx' | 'install'> => {
    const rt = module.newRuntime()
    rt.setMaxStackSize(boot.defaultStackBytes)
    const ctx = rt.newContext()
    const install = ctx.unwrapResult(ctx.evalCode(source, PRELUDE_FILE))
    return { rt, ctx, install }
  }
  const bytes = new Uint8Array(memory.buffer)
  const ffi = module.getFFI()
  let built: Pick<Instance, 'rt' | 'ctx' | 'install'>
  if (template === undefined) {
    const recorded = record(ffi, bytes, build(preludeJs))
    template = recorded.template
    built = recorded.value
  } else if (template === null) {
    built = build(preludeJs)()
  } else {
    try {
      built = replay(ffi, bytes, template, build(''))
    } catch (e) {
      if (!(e instanceof TemplateMismatch)) throw e
      // The library did not repeat its calls: this memory is inconsistent and is dropped.
      template = null
      return createInstance()
    }
  }
  return { id, memory, ...built, ...(inspection === undefined ? {} : { inspection }) }
}

// ── chores: scrub, refill, off the critical path ──────────────────────────────────
//
// A finished execution's result is sent first; its instance is dropped, its memory zeroed and
// a replacement instance built afterwards, one small step per `setImmediate`. Messages are
// handled between steps, so a request never waits behind a whole scrub: it takes a ready
// instance, or builds one in a spare or fresh (kernel-zeroed) memory when none is ready.
//
// Memories are recycled rather than allocated: each new 16 MiB memory is external memory to V8,
// and allocating one per execution made garbage collection the largest cost of a run.

/** Scrub granularity: a chunk that compares equal to zeros is left alone (and uncommitted). */
const SCRUB_CHUNK_BYTES = ZERO_CHECK_MAX_BYTES
/** Bytes examined per step: ≈0.15 ms of work, so a request arriving meanwhile hardly waits. */
const SCRUB_STEP_BYTES = 4 * 1024 * 1024

interface Retired {
  instance: Instance
  poisoned: boolean
}

const retired: Retired[] = []
interface ScrubJob {
  memory: WasmMemory
  offset: number
  /** Zeroing stops here: the heap's top, or the end of the memory. */
  end: number
  /** When the job also audits the part above the heap's top: where that part starts. */
  auditFrom?: number
}
const scrubbing: ScrubJob[] = []
let creating = 0
let choreScheduled = false
/** While an execution waits on the host, chores wait this long, so a quick answer finds the thread free. */
const CHORE_DELAY_BUSY_MS = 2

/**
 * The address of the heap's top (see heap-top.ts): found by a probe once the worker is idle,
 * null when the probe was inconclusive or an audit found dirt above it, after which every scrub
 * reads the whole memory again.
 */
let heapTopAddress: number | null | undefined
/** The probe waits for an idle moment this long after start-up, so it never delays a first run. */
const HEAP_TOP_PROBE_DELAY_MS = 1000
/** One scrub in this many also reads the memory above the heap's top, to prove the shortcut. */
const SCRUB_AUDIT_EVERY = 64
let scrubCount = 0

function scheduleChores(): void {
  if (choreScheduled) return
  choreScheduled = true
  // Back-to-back executions keep the worker busy: then clean-up must not wait, or retired
  // instances (16 MiB each) pile up faster than they are disposed.
  if (executions.size === 0 || retired.length + scrubbing.length > 1) setImmediate(runChore)
  else setTimeout(runChore, CHORE_DELAY_BUSY_MS)
}

function runChore(): void {
  choreScheduled = false
  if (choreStep()) scheduleChores()
}

/** One step of background work, most urgent first; false when there is nothing left to do. */
function choreStep(): boolean {
  queueRetired()
  const short = warm.length + creating < boot.prewarm
  if (short && spareMemories.length > 0) return startCreate()
  const job = scrubbing[0]
  if (job !== undefined) {
    if (scrubStep(job)) {
      scrubbing.shift()
      // Keep the most recent ones: the next instance (LIFO) gets the memory scrubbed last.
      if (spareMemories.length >= SPARE_MEMORIES) spareMemories.shift()
      spareMemories.push(job.memory)
    }
    return true
  }
  // Nothing to recycle: a new memory.
  if (short) return startCreate()
  return false
}

/**
 * A zeroed memory for a new instance: a spare one, else one whose scrub is finished now (under
 * saturation that is cheaper than a new memory and the garbage collection it brings).
 */
function takeRecycledMemory(): WasmMemory | undefined {
  const spare = spareMemories.pop()
  if (spare !== undefined) return spare
  queueRetired()
  const job = scrubbing.shift()
  if (job === undefined) return undefined
  while (!scrubStep(job));
  return job.memory
}

function queueRetired(): void {
  for (let old = retired.shift(); old !== undefined; old = retired.shift()) {
    const memory = old.instance.memory
    const size = memory.buffer.byteLength
    // A memory that grew, or whose instance failed at host level, is dropped, never reused.
    if (old.poisoned || size !== INITIAL_PAGES * PAGE_BYTES) continue
    // Under saturation the oldest is dropped unscrubbed (never reused, freed by the GC)
    // rather than queued, so the backlog stays bounded.
    if (scrubbing.length >= SPARE_MEMORIES) scrubbing.shift()
    const top =
      typeof heapTopAddress === 'number'
        ? heapTop(new Uint8Array(memory.buffer), heapTopAddress, SCRUB_CHUNK_BYTES)
        : undefined
    if (top === undefined) scrubbing.push({ memory, offset: 0, end: size })
    else if (++scrubCount % SCRUB_AUDIT_EVERY === 0)
      scrubbing.push({ memory, offset: 0, end: size, auditFrom: top })
    else scrubbing.push({ memory, offset: 0, end: top })
  }
}

/** Zeroes the next part of a memory, chunk by chunk; true when the job is done. */
function scrubStep(job: ScrubJob): boolean {
  const bytes = bufferOf(job.memory.buffer)
  const end = Math.min(job.end, job.offset + SCRUB_STEP_BYTES)
  for (let at = job.offset; at < end; at += SCRUB_CHUNK_BYTES) {
    const chunkEnd = Math.min(end, at + SCRUB_CHUNK_BYTES)
    if (isZero(bytes, at, chunkEnd)) continue
    bytes.fill(0, at, chunkEnd)
    // Something above the heap's top was written: the shortcut is wrong, stop taking it.
    if (job.auditFrom !== undefined && at >= job.auditFrom) heapTopAddress = null
  }
  job.offset = end
  if (end < job.end) return false
  if (boot.inspectMemory) lastScrubBytes.set(job.memory, job.end)
  return true
}

/**
 * Finds the heap's top in a throwaway instance, once. The instance is made at once; the probe
 * itself (≈5–10 ms of allocation in the guest) waits until the worker has nothing else to do.
 */
function probeHeapTop(): void {
  const memory = new WasmMemoryCtor({ initial: INITIAL_PAGES, maximum: MAXIMUM_PAGES })
  newQuickJSWASMModuleFromVariant(
    newVariant(variantBase, { wasmModule: boot.wasmModule as never, wasmMemory: memory as never }),
  )
    .then((module) => {
      const ctx = module.newRuntime().newContext()
      const probeWhenIdle = (): void => {
        if (executions.size > 0 || retired.length + scrubbing.length > 0 || creating > 0) {
          setTimeout(probeWhenIdle, 50).unref()
          return
        }
        heapTopAddress = findHeapTopAddress(ctx, new Uint8Array(memory.buffer)) ?? null
      }
      probeWhenIdle()
    })
    .catch(() => {
      heapTopAddress = null
    })
}

function startCreate(): boolean {
  creating++
  createInstance()
    .then((instance) => {
      warm.push(instance)
      send({ type: 'warm', warm: warm.length })
    })
    .catch(() => undefined)
    .finally(() => {
      creating--
      scheduleChores()
    })
  return true
}

/** Hands an instance to the background chores; its memory is scrubbed before any reuse. */
function retire(instance: Instance, poisoned: boolean): void {
  retired.push({ instance, poisoned })
  scheduleChores()
}

const warm: Instance[] = []

async function takeInstance(): Promise<Instance> {
  const instance = warm.shift()
  scheduleChores()
  return instance ?? createInstance()
}

// ── one execution ─────────────────────────────────────────────────────────────────────────

interface PendingCall {
  callId: number
  deferred: QuickJSDeferredPromise
  server: string
  tool: string
  argsJson: string
  argsBytes: number
  index: number
}

function answerJson(code: string, message: string): string {
  return JSON.stringify({ ok: false, code, message })
}

function jsonDepthOver(json: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i)
    if (inString) {
      if (c === 92) i++
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > max) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

type Sink = (message: FromWorker) => void

interface ExecutionSetup {
  execId: number
  instance: Instance
  limits: SandboxLimits
  program: Extract<TranspileResult, { ok: true }>
  acquireMs: number
  transpileMs: number
  deadline: number
  sink: Sink
  needles: string[] | undefined
  onFinished: (execution: Execution) => void
}

class Execution {
  private done = false
  private poisoned = false
  private readonly inFlight = new Map<number, PendingCall>()
  private readonly waiting: PendingCall[] = []
  private resultPromise: QuickJSHandle | undefined
  private timer: NodeJS.Timeout | undefined
  private nextCallId = 0
  private accepted = 0
  private readonly logs: string[] = []
  private logBytes = 0
  private droppedLogBytes = 0
  private readonly startedAt = performance.now()
  private readonly rt: QuickJSRuntime
  private readonly ctx: QuickJSContext

  readonly execId: number
  private readonly instance: Instance
  private readonly limits: SandboxLimits
  private readonly program: Extract<TranspileResult, { ok: true }>
  private readonly acquireMs: number
  private readonly transpileMs: number
  private readonly deadline: number
  private readonly sink: Sink
  private readonly needles: string[] | undefined
  private readonly onFinished: (execution: Execution) => void
  private needlesAtStart: string[] = []

  constructor(setup: ExecutionSetup) {
    this.execId = setup.execId
    this.instance = setup.instance
    this.limits = setup.limits
    this.program = setup.program
    this.acquireMs = setup.acquireMs
    this.transpileMs = setup.transpileMs
    this.deadline = setup.deadline
    this.sink = setup.sink
    this.needles = setup.needles
    this.onFinished = setup.onFinished
    this.rt = setup.instance.rt
    this.ctx = setup.instance.ctx
  }

  start(manifestJson: string): void {
    const { ctx, rt } = this
    try {
      rt.setMemoryLimit(this.limits.memoryBytes)
      rt.setMaxStackSize(this.limits.stackBytes)
      rt.setInterruptHandler(() => Date.now() > this.deadline)
      this.timer = setTimeout(() => this.timeUp(), Math.max(0, this.deadline - Date.now()))

      const dispatch = ctx.newFunction('dispatch', (...args) => this.dispatch(args))
      const log = ctx.newFunction('log', (arg) => this.log(arg))
      const manifest = ctx.newString(manifestJson)
      const options: GuestOptions = {
        maxOutputBytes: this.limits.maxOutputBytes,
        randomSeed: randomSeed(),
      }
      const guestOptions = ctx.newString(JSON.stringify(options))
      const installed = ctx.callFunction(
        this.instance.install,
        ctx.undefined,
        dispatch,
        log,
        manifest,
        guestOptions,
      )
      for (const h of [dispatch, log, manifest, guestOptions]) h.dispose()
      const api = ctx.unwrapResult(installed)

      if (this.needles !== undefined)
        this.needlesAtStart = findNeedles(this.instance.memory, this.needles)

      const compiled = ctx.evalCode(WRAP_HEAD + this.program.js + WRAP_TAIL, MODEL_FILE)
      if (compiled.error) {
        const error = this.compileError(compiled.error)
        compiled.error.dispose()
        this.finish({ ok: false, error })
        return
      }
      const body = compiled.value
      const run = ctx.getProp(api, 'run')
      const started = ctx.callFunction(run, api, body)
      if (started.error) {
        this.finish({ ok: false, error: this.engineError(started.error) })
        return
      }
      this.resultPromise = started.value
      this.pump()
    } catch (e) {
      this.hostFailure(e)
    }
  }

  /** Runs pending jobs in batches until the result settles or the guest waits on the host. */
  private pump(): void {
    if (this.done) return
    try {
      for (;;) {
        const jobs = this.rt.executePendingJobs(JOB_BATCH)
        if (jobs.error) {
          this.finish({ ok: false, error: this.engineError(jobs.error) })
          return
        }
        if (this.settleIfDone()) return
        if (Date.now() > this.deadline) {
          this.finish({ ok: false, error: timeoutError(this.limits.timeoutMs) })
          return
        }
        if (jobs.value < JOB_BATCH) return
      }
    } catch (e) {
      this.hostFailure(e)
    }
  }

  private settleIfDone(): boolean {
    const promise = this.resultPromise
    if (promise === undefined) return false
    const state = this.ctx.getPromiseState(promise)
    if (state.type === 'pending') return false
    if (state.type === 'rejected') {
      this.finish({ ok: false, error: this.engineError(state.error) })
      return true
    }
    const envelope =
      this.ctx.typeof(state.value) === 'string' ? this.ctx.getString(state.value) : undefined
    if (envelope === undefined) {
      this.finish({
        ok: false,
        error: { code: 'INTERNAL', message: 'the runtime returned no result' },
      })
    } else if (envelope.startsWith('{"ok":true')) {
      this.finish({ ok: true, envelopeJson: envelope })
    } else {
      const failed = JSON.parse(envelope) as Extract<RunEnvelope, { ok: false }>
      const error: SandboxError =
        failed.code === 'TIMEOUT'
          ? timeoutError(this.limits.timeoutMs)
          : { code: failed.code, message: failed.message }
      this.finish({ ok: false, error: this.withPosition(error, failed.line, failed.column) })
    }
    return true
  }

  /** Maps a position in the wrapped JS to the model's source; drops it when outside the body. */
  private withPosition(
    error: SandboxError,
    line: number | undefined,
    column: number | undefined,
  ): SandboxError {
    if (line === undefined || line < 1 || line > this.program.js.split('\n').length) return error
    let jsColumn = column ?? 1
    if (line === 1) jsColumn = Math.max(1, jsColumn - WRAP_HEAD.length)
    const mapped = this.program.toSource({ line, column: jsColumn })
    return { ...error, line: mapped.line, column: mapped.column }
  }

  /** Reads an engine-level error (no guest code runs here) and names its code. */
  private engineError(handle: QuickJSHandle): SandboxError {
    if (Date.now() > this.deadline) return timeoutError(this.limits.timeoutMs)
    let message = ''
    try {
      const m = this.ctx.getProp(handle, 'message')
      if (this.ctx.typeof(m) === 'string') message = this.ctx.getString(m)
      m.dispose()
    } catch {
      this.poisoned = true
    }
    if (message === 'out of memory')
      return {
        code: 'MEMORY_LIMIT',
        message: 'out of memory: the execution reached its memory limit',
      }
    if (message === 'stack overflow')
      return {
        code: 'STACK_LIMIT',
        message: 'stack overflow: the execution reached its stack limit',
      }
    if (message === 'interrupted') return timeoutError(this.limits.timeoutMs)
    return { code: 'RUNTIME_ERROR', message: 'the execution failed in the engine' }
  }

  private compileError(handle: QuickJSHandle): SandboxError {
    const engine = this.engineError(handle)
    if (engine.code !== 'RUNTIME_ERROR') return engine
    let message = 'invalid syntax'
    let stack = ''
    try {
      const m = this.ctx.getProp(handle, 'message')
      if (this.ctx.typeof(m) === 'string') message = this.ctx.getString(m)
      m.dispose()
      const s = this.ctx.getProp(handle, 'stack')
      if (this.ctx.typeof(s) === 'string') stack = this.ctx.getString(s)
      s.dispose()
    } catch {
      this.poisoned = true
    }
    const at = /model\.ts:(\d+)(?::(\d+))?/.exec(stack)
    const error = this.withPosition(
      { code: 'SYNTAX_ERROR', message: `SyntaxError: ${message}` },
      at ? Number(at[1]) : undefined,
      at?.[2] ? Number(at[2]) : undefined,
    )
    if (error.line !== undefined) error.message += ` (line ${error.line}, column ${error.column})`
    return error
  }

  private dispatch(args: QuickJSHandle[]): QuickJSHandle {
    const { ctx } = this
    const [serverH, toolH, argsH] = args
    if (
      serverH === undefined ||
      toolH === undefined ||
      argsH === undefined ||
      [serverH, toolH, argsH].some((h) => ctx.typeof(h) !== 'string')
    ) {
      throw new TypeError('dispatch(server, tool, argsJson) takes three strings')
    }
    const server = ctx.getString(serverH)
    const tool = ctx.getString(toolH)
    const argsJson = ctx.getString(argsH)
    const deferred = ctx.newPromise()
    const argsBytes = Buffer.byteLength(argsJson)
    const name = `${server}.${tool}`
    let refusal: string | undefined
    if (argsBytes > this.limits.maxArgsBytes) {
      refusal = answerJson(
        'INVALID_ARGS',
        `arguments of ${name} are ${argsBytes} bytes, over the limit of ${this.limits.maxArgsBytes}`,
      )
    } else if (jsonDepthOver(argsJson, this.limits.maxArgsDepth)) {
      refusal = answerJson(
        'INVALID_ARGS',
        `arguments of ${name} are nested deeper than ${this.limits.maxArgsDepth} levels`,
      )
    } else if (this.accepted >= this.limits.maxToolCalls) {
      refusal = answerJson(
        'CALL_LIMIT',
        `more than ${this.limits.maxToolCalls} tool calls in one execution`,
      )
    }
    if (refusal !== undefined) {
      // Answer after the current job batch, never re-entering QuickJS from inside a host call.
      const answer = refusal
      queueMicrotask(() => this.resolve(deferred, answer))
      return deferred.handle
    }
    const call: PendingCall = {
      callId: this.nextCallId++,
      deferred,
      server,
      tool,
      argsJson,
      argsBytes,
      index: this.accepted++,
    }
    if (this.inFlight.size < this.limits.maxConcurrentCalls) this.send(call)
    else this.waiting.push(call)
    return deferred.handle
  }

  private send(call: PendingCall): void {
    this.inFlight.set(call.callId, call)
    this.sink({
      type: 'call',
      execId: this.execId,
      callId: call.callId,
      server: call.server,
      tool: call.tool,
      argsJson: call.argsJson,
      argsBytes: call.argsBytes,
      index: call.index,
    })
  }

  answer(callId: number, json: string): void {
    const call = this.inFlight.get(callId)
    if (call === undefined || this.done) return
    this.inFlight.delete(callId)
    const next = this.waiting.shift()
    if (next !== undefined) this.send(next)
    this.resolve(call.deferred, json)
  }

  private resolve(deferred: QuickJSDeferredPromise, json: string): void {
    if (this.done || !deferred.alive) return
    try {
      const value = this.ctx.newString(json)
      deferred.resolve(value)
      value.dispose()
      this.pump()
    } catch (e) {
      this.hostFailure(e)
    }
  }

  private log(arg: QuickJSHandle | undefined): QuickJSHandle {
    const { ctx } = this
    if (arg === undefined) return ctx.false
    if (ctx.typeof(arg) === 'number') {
      this.droppedLogBytes += Math.max(0, Math.floor(ctx.getNumber(arg)))
      return ctx.false
    }
    if (ctx.typeof(arg) !== 'string') return ctx.false
    let line: string
    try {
      line = JSON.parse(ctx.getString(arg)) as string
    } catch {
      return ctx.false
    }
    if (typeof line !== 'string') return ctx.false
    const bytes = Buffer.byteLength(line)
    if (this.droppedLogBytes === 0 && this.logBytes + bytes <= this.limits.maxLogBytes) {
      this.logs.push(line)
      this.logBytes += bytes
      return ctx.true
    }
    this.droppedLogBytes += bytes
    return ctx.false
  }

  private timeUp(): void {
    if (!this.done) this.finish({ ok: false, error: timeoutError(this.limits.timeoutMs) })
  }

  cancel(): void {
    if (!this.done)
      this.finish({
        ok: false,
        error: { code: 'CANCELLED', message: 'the execution was cancelled' },
      })
  }

  private hostFailure(e: unknown): void {
    // A host-level exception out of WASM (abort, RangeError): the instance is poisoned.
    this.poisoned = true
    const overflow = e instanceof RangeError
    this.finish({
      ok: false,
      error: overflow
        ? { code: 'STACK_LIMIT', message: 'stack overflow: the execution reached its stack limit' }
        : Date.now() > this.deadline
          ? timeoutError(this.limits.timeoutMs)
          : { code: 'INTERNAL', message: 'the sandbox failed while running this execution' },
    })
  }

  private finish(result: { ok: boolean; envelopeJson?: string; error?: SandboxError }): void {
    if (this.done) return
    this.done = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    const logs = this.logs
    if (this.droppedLogBytes > 0)
      logs.push(`[logs truncated: ${this.droppedLogBytes} bytes dropped]`)
    const done: WorkerDone = {
      ok: result.ok,
      ...(result.envelopeJson === undefined ? {} : { envelopeJson: result.envelopeJson }),
      ...(result.error === undefined ? {} : { error: result.error }),
      logs,
      acquireMs: this.acquireMs,
      transpileMs: this.transpileMs,
      runMs: performance.now() - this.startedAt,
      instanceId: this.instance.id,
    }
    this.onFinished(this)
    if (this.needles !== undefined) {
      // Inspection reads the memory as the run left it, before the scrub.
      done.memory = {
        ...this.instance.inspection,
        nonZeroBytesBeforeInstantiation:
          this.instance.inspection?.nonZeroBytesBeforeInstantiation ?? -1,
        needlesAtStart: this.needlesAtStart,
        needlesAfterRun: findNeedles(this.instance.memory, this.needles),
      }
    }
    // The result goes out first; scrubbing happens between later messages.
    this.sink({ type: 'done', execId: this.execId, done })
    retire(this.instance, this.poisoned)
  }
}

/** Seeds drawn 256 at a time: one call to the system's generator costs more than the seed. */
const seedPool = new Uint32Array(4 * 256)
let seedCursor = seedPool.length

function randomSeed(): [number, number, number, number] {
  if (seedCursor === seedPool.length) {
    randomFillSync(seedPool)
    seedCursor = 0
  }
  const at = seedCursor
  seedCursor += 4
  return [seedPool[at]!, seedPool[at + 1]!, seedPool[at + 2]!, seedPool[at + 3]!]
}

function timeoutError(timeoutMs: number): SandboxError {
  return { code: 'TIMEOUT', message: `the execution ran longer than ${timeoutMs} ms` }
}

// ── the worker's loop ─────────────────────────────────────────────────────────────────────

const executions = new Map<number, Execution>()

async function execute(message: Extract<ToWorker, { type: 'execute' }>, sink: Sink): Promise<void> {
  const deadline = Date.now() + message.limits.timeoutMs
  const arrivedAt = performance.now()
  let instance: Instance
  try {
    instance = await takeInstance()
  } catch {
    sink({
      type: 'done',
      execId: message.execId,
      done: {
        ok: false,
        error: { code: 'INTERNAL', message: 'the sandbox could not start an instance' },
        logs: [],
        acquireMs: performance.now() - arrivedAt,
        transpileMs: 0,
        runMs: 0,
        instanceId: '',
      },
    })
    return
  }
  const acquiredAt = performance.now()
  const acquireMs = acquiredAt - arrivedAt
  const program = transpile(message.code)
  const transpileMs = performance.now() - acquiredAt
  if (!program.ok) {
    // The instance never saw model code: it goes back to the front of the ready list.
    warm.unshift(instance)
    sink({
      type: 'done',
      execId: message.execId,
      done: {
        ok: false,
        error: program.error,
        logs: [],
        acquireMs,
        transpileMs,
        runMs: 0,
        instanceId: '',
      },
    })
    return
  }
  const execution = new Execution({
    execId: message.execId,
    instance,
    limits: message.limits,
    program,
    acquireMs,
    transpileMs,
    deadline,
    sink,
    needles: message.inspectNeedles,
    onFinished: (e) => executions.delete(e.execId),
  })
  executions.set(message.execId, execution)
  execution.start(message.manifestJson)
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'execute':
      void execute(message, send)
      break
    case 'answer':
      executions.get(message.execId)?.answer(message.callId, message.answerJson)
      break
    case 'cancel':
      executions.get(message.execId)?.cancel()
      break
  }
})

/**
 * Exercises what a typical request does (type syntax, async, Promise.all, a tool call, which is
 * refused here, a log line, a result), so the first real request finds sucrase and the WASM
 * functions it needs already compiled.
 */
const WARM_UP_CODE = `interface P { n: number }
const f = async <T,>(x: T): Promise<T> => x
const r = await Promise.all([f<P>({ n: 1 }), tools.w.f({ a: [1, 'b'] }).catch((e: Error) => e.message)])
console.log('warm', r.length)
r`

/** Warm-up: load sucrase and JIT the WASM with one throwaway run, then report ready. */
async function warmUp(): Promise<void> {
  const limits: SandboxLimits = {
    timeoutMs: 5000,
    memoryBytes: 16 * 1024 * 1024,
    stackBytes: boot.defaultStackBytes,
    maxSourceBytes: 1024,
    maxToolCalls: 0,
    maxConcurrentCalls: 1,
    maxArgsBytes: 1024,
    maxArgsDepth: 8,
    maxResultBytes: 1024,
    maxOutputBytes: 1024,
    maxLogBytes: 1024,
  }
  await new Promise<void>((resolve) => {
    void execute(
      { type: 'execute', execId: -1, code: WARM_UP_CODE, manifestJson: '{"w":{"f":"f"}}', limits },
      (m) => {
        if (m.type === 'done') resolve()
      },
    )
  })
}

warmUp()
  .then(() => {
    setTimeout(probeHeapTop, HEAP_TOP_PROBE_DELAY_MS).unref()
    // The warm-up's own finish schedules the prewarmed instances.
    send({ type: 'ready', warm: warm.length })
  })
  .catch((e: unknown) => {
    send({ type: 'boot-failed', message: e instanceof Error ? e.message : String(e) })
  })
