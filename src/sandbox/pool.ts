/**
 * The sandbox pool on the main thread: worker threads running QuickJS, one execution each at a
 * time, a queue in front of them, and the bridge that turns a worker's tool-call messages into
 * `onCall` invocations.
 *
 * Isolation between executions is structural. A worker hosts one execution at a time, so a
 * guest that keeps its thread busy (an endless loop, a builtin that ignores the interrupt, memory
 * thrash) slows no other execution, and a worker the watchdog has to terminate takes nothing
 * else with it. Within an execution, every loop of the QuickJS module checks the deadline
 * (fuel.ts), so even builtins stop within the execution's own `timeoutMs`; the watchdog is the
 * last resort. An execution is never run twice: a worker lost mid-run fails its execution.
 *
 * The pool keeps `workers` threads and starts more, up to `maxWorkers`, while executions wait;
 * threads above `workers` stop after `idleWorkerMs` without work.
 *
 * @module
 */
import { availableParallelism } from 'node:os'
import type { Json } from '../types.js'
import type {
  WireAnswer,
  WireCall,
  WireProgram,
  WorkerBoot,
  WorkerDone,
  WorkerModule,
} from './messages.js'
import { sharedModule } from './quickjs-module.js'
import { WorkerSlot, type SlotEvents } from './slot.js'
import { transpile, transpileCached, type TranspileResult } from './transpile.js'
import type {
  ExecuteOptions,
  ExecuteRequest,
  SandboxCallOutcome,
  SandboxError,
  SandboxLimits,
  SandboxOutcome,
  SandboxPoolOptions,
  SandboxStats,
} from './types.js'

/**
 * The kernel's `DEFAULT_LIMITS` (src/config), restated so that importing the sandbox does not
 * load the config schema and zod; a test keeps the two equal.
 */
export const SANDBOX_DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  timeoutMs: 30_000,
  memoryBytes: 64 * 1024 * 1024,
  stackBytes: 1024 * 1024,
  maxSourceBytes: 256 * 1024,
  maxToolCalls: 50,
  maxConcurrentCalls: 8,
  maxArgsBytes: 256 * 1024,
  maxArgsDepth: 64,
  maxResultBytes: 1024 * 1024,
  maxOutputBytes: 1024 * 1024,
  maxOutputDepth: 64,
  maxLogBytes: 64 * 1024,
})

const LIMIT_KEYS = Object.keys(SANDBOX_DEFAULT_LIMITS) as (keyof SandboxLimits)[]

/**
 * Transpiled once per process while the first workers warm up (this thread waits for them
 * then), so that the first real program finds the parser and the transform compiled by the JIT.
 */
const WARM_UP_TS = `interface Row { id: number; name?: string }
const rows: Row[] = await Promise.all([1, 2].map(async (id) => ({ id }) as Row))
const byId = new Map<number, Row>(rows.map((r): [number, Row] => [r.id, r]))
for (const [id, row] of byId) console.log(\`\${id}: \${row.name ?? 'none'}\`)
const found = await tools.a.b({ ids: [...byId.keys()], deep: { x: true } })
;({ count: rows.length, found, ok: rows.every((r) => r.id > 0) })`
let transpilerWarm = false

const DEFAULT_PREWARM = 1
const DEFAULT_WATCHDOG_GRACE_MS = 250
const DEFAULT_IDLE_WORKER_MS = 30_000
const DEFAULT_MIN_MAX_WORKERS = 8

function pickLimits(source: Partial<SandboxLimits> | undefined): Partial<SandboxLimits> {
  const out: Partial<SandboxLimits> = {}
  if (source === undefined) return out
  for (const key of LIMIT_KEYS) {
    const v = source[key]
    if (typeof v === 'number') out[key] = v
  }
  return out
}

interface Running {
  execId: number
  req: ExecuteRequest
  limits: SandboxLimits
  program: Extract<TranspileResult, { ok: true }>
  transpileMs: number
  createdAt: number
  postedAt: number
  slot: WorkerSlot | undefined
  settle: (outcome: SandboxOutcome) => void
  settled: boolean
  calls: Map<number, AbortController>
  /** Answers ready but not yet sent: those ready in the same microtask go in one message. */
  answers: WireAnswer[]
  inspectNeedles: string[] | undefined
  onAbort: (() => void) | undefined
}

const ZERO_TIMINGS = { acquireMs: 0, runMs: 0 }

/** A pool of QuickJS sandboxes in worker threads. One fresh WASM instance per execution. */
export class SandboxPool {
  readonly #options: Required<Omit<SandboxPoolOptions, 'defaultLimits' | 'onEvent'>> &
    Pick<SandboxPoolOptions, 'onEvent'>
  readonly #defaults: SandboxLimits
  /** The compiled module and prelude, while they are being made. */
  readonly #sharing: Promise<WorkerModule>
  /** The same, once made: workers started from then on get it in their boot. */
  #shared: WorkerModule | undefined
  readonly #slots = new Set<WorkerSlot>()
  /** How many workers run an execution now, shared with each of them (WorkerBoot.running). */
  readonly #busyWord = new SharedArrayBuffer(4)
  readonly #queue: Running[] = []
  readonly #running = new Map<number, Running>()
  readonly #events: SlotEvents
  /** Workers starting up (not yet in `#slots`). */
  #starting = 0
  #templates: boolean
  #nextExecId = 1
  #spawned = 0
  #respawns = 0
  #executions = 0
  #templateFallbacks = 0
  #closed = false
  #idleTimer: NodeJS.Timeout | undefined

  private constructor(
    options: SandboxPoolOptions,
    sharing: Promise<WorkerModule>,
    defaults: SandboxLimits,
  ) {
    const workers = options.workers ?? Math.max(1, Math.min(2, availableParallelism()))
    this.#options = {
      workers,
      maxWorkers: Math.max(workers, options.maxWorkers ?? DEFAULT_MIN_MAX_WORKERS),
      idleWorkerMs: options.idleWorkerMs ?? DEFAULT_IDLE_WORKER_MS,
      prewarm: options.prewarm ?? DEFAULT_PREWARM,
      watchdogGraceMs: options.watchdogGraceMs ?? DEFAULT_WATCHDOG_GRACE_MS,
      inspectMemory: options.inspectMemory ?? false,
      templates: options.templates ?? true,
      faultTemplateReplay: options.faultTemplateReplay ?? false,
      onEvent: options.onEvent,
    }
    this.#templates = this.#options.templates
    this.#sharing = sharing
    sharing.then(
      (shared) => {
        this.#shared = shared
      },
      () => undefined,
    )
    this.#defaults = defaults
    this.#events = {
      onCalls: (slot, execId, calls) => {
        const running = this.#running.get(execId)
        if (running === undefined || running.slot !== slot || running.settled) return
        for (const call of calls) void this.#call(slot, running, call)
      },
      onDone: (slot, execId, done) => this.#onDone(slot, execId, done),
      onTemplateFailure: (slot, reason) => this.#onTemplateFailure(slot, reason),
      onLost: (slot, execId, reason) => this.#onLost(slot, execId, reason),
    }
  }

  /**
   * Compiles QuickJS once, starts the workers and waits until each finished a warm-up run. The
   * workers start first: their threads and imports overlap reading (or rewriting) and compiling
   * the module on this thread, which they get as their first message.
   */
  static async create(options: SandboxPoolOptions = {}): Promise<SandboxPool> {
    const defaults = { ...SANDBOX_DEFAULT_LIMITS, ...pickLimits(options.defaultLimits) }
    // In a later microtask: the synchronous part (reading the artefact) runs after the spawns.
    const sharing = Promise.resolve().then(async () => {
      const { wasmModule, preludeJs } = await sharedModule()
      return { wasmModule, preludeJs }
    })
    const pool = new SandboxPool(options, sharing, defaults)
    const spawns = Array.from({ length: pool.#options.workers }, () => pool.#spawn())
    try {
      // A module that cannot be made fails the start with its own error, not a worker's.
      await sharing
      if (!transpilerWarm) {
        transpilerWarm = true
        transpile(WARM_UP_TS)
      }
      await Promise.all(spawns)
    } catch (e) {
      await Promise.allSettled(spawns)
      await pool.close()
      throw e
    }
    return pool
  }

  #boot(): WorkerBoot {
    return {
      workerId: `w${++this.#spawned}`,
      ...(this.#shared === undefined ? {} : { module: this.#shared }),
      prewarm: this.#options.prewarm,
      templates: this.#templates,
      ...(this.#options.faultTemplateReplay ? { faultTemplateReplay: true } : {}),
      inspectMemory: this.#options.inspectMemory,
      defaultStackBytes: this.#defaults.stackBytes,
      running: this.#busyWord,
    }
  }

  async #spawn(): Promise<WorkerSlot> {
    this.#starting++
    try {
      const boot = this.#boot()
      const slot = await WorkerSlot.start(
        boot,
        this.#events,
        boot.module === undefined ? this.#sharing : undefined,
      )
      if (this.#closed) {
        await slot.terminate('the pool is closed')
        throw new Error('sluice: the sandbox pool was closed')
      }
      this.#slots.add(slot)
      // Its template failed while it started: replace it before it runs anything.
      if (slot.retireWhenIdle) this.#replace(slot, 'its instance template failed')
      return slot
    } finally {
      this.#starting--
      this.#drain()
    }
  }

  /** Starts a worker in the background; a failure is reported to what waits for one. */
  #spawnInBackground(): void {
    this.#spawn().catch((e: unknown) => {
      this.#options.onEvent?.({
        type: 'worker-lost',
        workerId: '',
        reason: e instanceof Error ? e.message : String(e),
      })
      // Without any worker, queued executions would wait forever: fail them.
      if (this.#slots.size === 0 && this.#starting === 0) {
        for (const running of this.#queue.splice(0)) {
          this.#fail(running, { code: 'INTERNAL', message: 'no sandbox worker is available' })
        }
      }
    })
  }

  /** Runs one execution. Never throws for anything the guest does. */
  execute(req: ExecuteRequest, options: ExecuteOptions = {}): Promise<SandboxOutcome> {
    const createdAt = performance.now()
    const limits: SandboxLimits = { ...this.#defaults, ...pickLimits(req.limits) }
    const early = (error: SandboxError, transpileMs = 0): Promise<SandboxOutcome> =>
      Promise.resolve({
        ok: false,
        error,
        logs: [],
        warnings: [],
        timings: {
          queueMs: 0,
          acquireMs: 0,
          transpileMs,
          runMs: 0,
          totalMs: performance.now() - createdAt,
        },
        instanceId: '',
      })
    if (this.#closed) return early({ code: 'INTERNAL', message: 'the sandbox pool is closed' })
    if (req.signal?.aborted)
      return early({ code: 'CANCELLED', message: 'the execution was cancelled' })
    const sourceBytes = Buffer.byteLength(req.code)
    if (sourceBytes > limits.maxSourceBytes) {
      return early({
        code: 'SOURCE_LIMIT',
        message: `the code is ${sourceBytes} bytes, over the limit of ${limits.maxSourceBytes}`,
      })
    }
    const program = transpileCached(req.code)
    const transpileMs = performance.now() - createdAt
    if (!program.ok) return early(program.error, transpileMs)
    return new Promise<SandboxOutcome>((resolve) => {
      const running: Running = {
        execId: this.#nextExecId++,
        req,
        limits,
        program,
        transpileMs,
        createdAt,
        postedAt: createdAt,
        slot: undefined,
        settle: resolve,
        settled: false,
        calls: new Map(),
        answers: [],
        inspectNeedles: options.inspectMemory?.needles,
        onAbort: undefined,
      }
      if (req.signal) {
        running.onAbort = () => this.#cancel(running)
        req.signal.addEventListener('abort', running.onAbort, { once: true })
      }
      this.#running.set(running.execId, running)
      this.#queue.push(running)
      this.#drain()
    })
  }

  #drain(): void {
    while (this.#queue.length > 0) {
      const slot = this.#idleSlot()
      if (slot === undefined) break
      this.#post(slot, this.#queue.shift()!)
    }
    // More work than workers: start another, one per waiting execution, up to the maximum.
    const total = this.#slots.size + this.#starting
    if (!this.#closed && this.#queue.length > this.#starting && total < this.#options.maxWorkers) {
      this.#spawnInBackground()
    }
  }

  /** The idle worker that has waited longest (its clean-up is most likely finished). */
  #idleSlot(): WorkerSlot | undefined {
    let best: WorkerSlot | undefined
    for (const slot of this.#slots) {
      if (slot.state !== 'idle' || slot.retireWhenIdle) continue
      if (best === undefined || slot.idleSince < best.idleSince) best = slot
    }
    return best
  }

  #post(slot: WorkerSlot, running: Running): void {
    running.slot = slot
    running.postedAt = performance.now()
    const program: WireProgram = { js: running.program.js, lines: running.program.lines }
    slot.run(
      {
        type: 'execute',
        execId: running.execId,
        program,
        manifestJson: JSON.stringify(running.req.manifest),
        limits: running.limits,
        ...(running.inspectNeedles === undefined ? {} : { inspectNeedles: running.inspectNeedles }),
        ...(running.req.randomSeed === undefined ? {} : { randomSeed: running.req.randomSeed }),
      },
      running.limits.timeoutMs + this.#options.watchdogGraceMs,
      () =>
        this.#fail(running, {
          code: 'TIMEOUT',
          message: `the execution ran longer than ${running.limits.timeoutMs} ms`,
        }),
    )
  }

  async #call(slot: WorkerSlot, running: Running, message: WireCall): Promise<void> {
    const controller = new AbortController()
    running.calls.set(message.callId, controller)
    let answerJson: string
    try {
      const args = JSON.parse(message.argsJson) as Json
      const outcome: SandboxCallOutcome = await running.req.onCall(
        {
          server: message.server,
          tool: message.tool,
          args,
          argsBytes: message.argsBytes,
          index: message.index,
        },
        controller.signal,
      )
      answerJson = answerFor(message.server, message.tool, outcome, running.limits)
    } catch {
      answerJson = JSON.stringify({
        ok: false,
        code: 'INTERNAL',
        message: `the tool call ${message.server}.${message.tool} failed in the host`,
      })
    } finally {
      running.calls.delete(message.callId)
    }
    if (running.settled || running.slot !== slot) return
    running.answers.push({ callId: message.callId, answerJson })
    if (running.answers.length > 1) return
    queueMicrotask(() => {
      const answers = running.answers
      running.answers = []
      if (running.settled || running.slot !== slot || answers.length === 0) return
      slot.send({ type: 'answers', execId: running.execId, answers })
    })
  }

  #onDone(slot: WorkerSlot, execId: number, done: WorkerDone): void {
    const running = this.#running.get(execId)
    if (running !== undefined && running.slot === slot) {
      this.#executions++
      this.#complete(running, done)
    }
    if (slot.retireWhenIdle) this.#replace(slot, 'its instance template failed')
    this.#drain()
    this.#scheduleIdleCheck()
  }

  #complete(running: Running, done: WorkerDone): void {
    if (running.settled) return
    let result: Json | undefined
    let ok = done.ok
    let error = done.error
    if (done.resultJson !== undefined) {
      try {
        result = JSON.parse(done.resultJson) as Json
      } catch {
        ok = false
        error = { code: 'INTERNAL', message: 'the sandbox returned an unreadable result' }
      }
    }
    if (error !== undefined && done.errorAt !== undefined)
      error = withSourcePosition(error, done.errorAt, running.program)
    this.#settle(running, {
      ok,
      ...(result === undefined || !ok ? {} : { result }),
      logs: done.logs,
      warnings: done.warnings,
      ...(error === undefined ? {} : { error }),
      ...(done.unsettledCalls === undefined || !ok ? {} : { unsettledCalls: done.unsettledCalls }),
      facts: running.program.facts,
      timings: this.#timings(running, done),
      instanceId: done.instanceId,
      ...(done.memory === undefined ? {} : { memory: done.memory }),
    })
  }

  #timings(
    running: Running,
    done: { acquireMs: number; runMs: number },
  ): SandboxOutcome['timings'] {
    return {
      // Transpiling happens between creation and queueing: it is not waiting for a worker.
      queueMs: Math.max(0, running.postedAt - running.createdAt - running.transpileMs),
      acquireMs: done.acquireMs,
      transpileMs: running.transpileMs,
      runMs: done.runMs,
      totalMs: performance.now() - running.createdAt,
    }
  }

  #fail(running: Running, error: SandboxError): void {
    this.#settle(running, {
      ok: false,
      error,
      logs: [],
      warnings: [],
      timings: this.#timings(running, ZERO_TIMINGS),
      instanceId: '',
    })
  }

  #settle(running: Running, outcome: SandboxOutcome): void {
    if (running.settled) return
    running.settled = true
    this.#running.delete(running.execId)
    // Calls still in flight belong to an execution that no longer exists.
    for (const controller of running.calls.values()) controller.abort()
    running.calls.clear()
    if (running.onAbort) running.req.signal?.removeEventListener('abort', running.onAbort)
    running.settle(outcome)
  }

  #cancel(running: Running): void {
    if (running.settled) return
    const queued = this.#queue.indexOf(running)
    if (queued >= 0) this.#queue.splice(queued, 1)
    else running.slot?.send({ type: 'cancel', execId: running.execId })
    this.#fail(running, { code: 'CANCELLED', message: 'the execution was cancelled' })
  }

  #onTemplateFailure(slot: WorkerSlot, reason: string): void {
    this.#templateFallbacks++
    // Later workers build in full: a template that failed once would fail again.
    this.#templates = false
    this.#options.onEvent?.({ type: 'template-fallback', workerId: slot.id, reason })
    slot.retireWhenIdle = true
    if (slot.state === 'idle' && this.#slots.has(slot))
      this.#replace(slot, 'its instance template failed')
  }

  /** Stops a worker on purpose and starts its replacement. */
  #replace(slot: WorkerSlot, reason: string): void {
    this.#slots.delete(slot)
    void slot.terminate(reason)
    this.#respawns++
    if (!this.#closed) this.#spawnInBackground()
  }

  /** A worker is gone. What it ran fails (never re-run); a replacement starts if needed. */
  #onLost(slot: WorkerSlot, execId: number | undefined, reason: string): void {
    const known = this.#slots.delete(slot)
    if (execId !== undefined) {
      const running = this.#running.get(execId)
      if (running !== undefined) {
        this.#fail(running, {
          code: 'INTERNAL',
          message: 'the sandbox worker stopped during this execution',
        })
      }
    }
    if (!known || this.#closed) return
    this.#options.onEvent?.({ type: 'worker-lost', workerId: slot.id, reason })
    this.#respawns++
    if (this.#slots.size + this.#starting < this.#options.workers || this.#queue.length > 0) {
      this.#spawnInBackground()
    }
  }

  /** Stops workers above the minimum that have been idle for `idleWorkerMs`. */
  #scheduleIdleCheck(): void {
    if (this.#idleTimer !== undefined || this.#slots.size <= this.#options.workers) return
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined
      const now = performance.now()
      for (const slot of this.#slots) {
        if (this.#slots.size <= this.#options.workers) break
        if (slot.state === 'idle' && now - slot.idleSince >= this.#options.idleWorkerMs) {
          this.#slots.delete(slot)
          void slot.terminate('idle')
        }
      }
      this.#scheduleIdleCheck()
    }, this.#options.idleWorkerMs)
    this.#idleTimer.unref()
  }

  stats(): SandboxStats {
    // The word the workers read to decide whether to spin: counted by the slots' own changes.
    const busy = Atomics.load(new Int32Array(this.#busyWord), 0)
    return {
      workers: this.#slots.size,
      busy,
      starting: this.#starting,
      queued: this.#queue.length,
      // Each idle worker holds a prepared instance; a busy one prepares the next.
      ready: this.#slots.size - busy,
      respawns: this.#respawns,
      executions: this.#executions,
      templateFallbacks: this.#templateFallbacks,
    }
  }

  /** Stops the workers. Executions still queued or running end with INTERNAL. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#idleTimer)
    for (const running of this.#queue.splice(0)) {
      this.#fail(running, { code: 'INTERNAL', message: 'the sandbox pool was closed' })
    }
    for (const running of [...this.#running.values()]) {
      this.#fail(running, { code: 'INTERNAL', message: 'the sandbox pool was closed' })
    }
    const slots = [...this.#slots]
    this.#slots.clear()
    await Promise.all(slots.map((slot) => slot.terminate('the pool is closed')))
  }
}

/** The JSON text a tool call's outcome reaches the guest as; results over the limit are refused. */
function answerFor(
  server: string,
  tool: string,
  outcome: SandboxCallOutcome,
  limits: SandboxLimits,
): string {
  if (outcome === null || typeof outcome !== 'object')
    throw new TypeError('onCall must resolve to an outcome')
  if (!outcome.ok) {
    return JSON.stringify({
      ok: false,
      code: typeof outcome.code === 'string' ? outcome.code : 'INTERNAL',
      message: typeof outcome.message === 'string' ? outcome.message : 'the tool call failed',
    })
  }
  const valueJson = JSON.stringify(outcome.value) ?? 'null'
  const bytes = Buffer.byteLength(valueJson)
  if (bytes > limits.maxResultBytes) {
    return JSON.stringify({
      ok: false,
      code: 'OUTPUT_LIMIT',
      message: `the result of ${server}.${tool} is ${bytes} bytes, over the limit of ${limits.maxResultBytes}`,
    })
  }
  return `{"ok":true,"value":${valueJson}}`
}

/** Maps a position in the transpiled program to the model's source (syntax errors name it too). */
function withSourcePosition(
  error: SandboxError,
  at: { line: number; column: number },
  program: Extract<TranspileResult, { ok: true }>,
): SandboxError {
  const mapped = program.toSource(at)
  const out: SandboxError = { ...error, line: mapped.line, column: mapped.column }
  if (error.code === 'SYNTAX_ERROR')
    out.message += ` (line ${mapped.line}, column ${mapped.column})`
  return out
}
