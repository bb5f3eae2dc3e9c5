/**
 * The sandbox pool on the main thread: worker threads running QuickJS, a queue, the wall-clock
 * watchdog, and the bridge that turns a worker's tool-call messages into `onCall` invocations.
 *
 * The watchdog exists because two things escape QuickJS's interrupt handler: a guest thrashing
 * near its memory limit (seconds inside malloc with the interrupt checked once) and anything
 * stuck below the interpreter. At `timeoutMs + watchdogGraceMs` the worker is terminated, the
 * execution answered with TIMEOUT and the worker respawned. Co-resident executions that had not
 * reached the host yet are requeued; those that had are failed (their calls may have effects).
 *
 * @module
 */
import { readFileSync, existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import type { Json } from '../types.js'
import type { CompiledWasm, FromWorker, ToWorker, WorkerBoot, WorkerDone } from './messages.js'
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
  maxLogBytes: 64 * 1024,
})

const LIMIT_KEYS = [
  'timeoutMs',
  'memoryBytes',
  'stackBytes',
  'maxSourceBytes',
  'maxToolCalls',
  'maxConcurrentCalls',
  'maxArgsBytes',
  'maxArgsDepth',
  'maxResultBytes',
  'maxOutputBytes',
  'maxLogBytes',
] as const satisfies readonly (keyof SandboxLimits)[]

/** Executions interleaved in one worker (they yield to each other while awaiting tool calls). */
const EXECUTIONS_PER_WORKER = 8
const DEFAULT_PREWARM = 2
const DEFAULT_WATCHDOG_GRACE_MS = 250
const BOOT_TIMEOUT_MS = 30_000

/** The slice of the WebAssembly JS API used here (Node's types declare only part of it). */
const wasmApi = (
  globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<CompiledWasm> } }
).WebAssembly

const here = dirname(fileURLToPath(import.meta.url))
/** Under tsx/vitest this file is TypeScript and so is the worker; from dist/ both are JS. */
const runningFromSource = import.meta.url.endsWith('.ts')

function pickLimits(source: Partial<SandboxLimits> | undefined): Partial<SandboxLimits> {
  const out: Partial<SandboxLimits> = {}
  if (source === undefined) return out
  for (const key of LIMIT_KEYS) {
    const v = source[key]
    if (typeof v === 'number') out[key] = v
  }
  return out
}

function findPrelude(): string {
  // src/sandbox → ../../runtime; dist/src/sandbox → ../../../runtime
  for (const up of ['../..', '../../..']) {
    const p = join(here, up, 'runtime', 'prelude.ts')
    if (existsSync(p)) return p
  }
  throw new Error('sluice: runtime/prelude.ts not found next to the package')
}

interface Running {
  execId: number
  req: ExecuteRequest
  limits: SandboxLimits
  createdAt: number
  postedAt: number
  worker: WorkerSlot | undefined
  settle: (outcome: SandboxOutcome) => void
  settled: boolean
  calls: Map<number, AbortController>
  /** Calls that reached the host: after one, a killed worker cannot requeue this execution. */
  callsSeen: number
  watchdog: NodeJS.Timeout | undefined
  inspectNeedles: string[] | undefined
  onAbort: (() => void) | undefined
}

interface WorkerSlot {
  id: string
  worker: Worker
  /** The pool's end of the slot's channel: every message goes through it. */
  port: MessagePort
  active: Map<number, Running>
  warm: number
  alive: boolean
  /** Last time an execution was handed to it, to spread work when workers tie. */
  lastUsedAt: number
}

const ZERO_TIMINGS = { acquireMs: 0, transpileMs: 0, runMs: 0 }

/** A pool of QuickJS sandboxes in worker threads. One fresh WASM instance per execution. */
export class SandboxPool {
  readonly #options: Required<Omit<SandboxPoolOptions, 'defaultLimits'>>
  readonly #defaults: SandboxLimits
  readonly #boot: Omit<WorkerBoot, 'workerId'>
  readonly #slots: WorkerSlot[] = []
  readonly #queue: Running[] = []
  #nextExecId = 1
  #spawned = 0
  #respawns = 0
  #executions = 0
  #closed = false

  private constructor(
    options: SandboxPoolOptions,
    boot: Omit<WorkerBoot, 'workerId'>,
    defaults: SandboxLimits,
  ) {
    this.#options = {
      workers: options.workers ?? Math.max(1, Math.min(2, availableParallelism())),
      prewarm: options.prewarm ?? DEFAULT_PREWARM,
      watchdogGraceMs: options.watchdogGraceMs ?? DEFAULT_WATCHDOG_GRACE_MS,
      inspectMemory: options.inspectMemory ?? false,
    }
    this.#boot = boot
    this.#defaults = defaults
  }

  /** Compiles QuickJS once, starts the workers and waits until each finished a warm-up run. */
  static async create(options: SandboxPoolOptions = {}): Promise<SandboxPool> {
    const require = createRequire(import.meta.url)
    const wasmModule = await wasmApi.compile(
      readFileSync(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm')),
    )
    const defaults = { ...SANDBOX_DEFAULT_LIMITS, ...pickLimits(options.defaultLimits) }
    const pool = new SandboxPool(
      options,
      {
        wasmModule,
        preludeSource: readFileSync(findPrelude(), 'utf8'),
        prewarm: options.prewarm ?? DEFAULT_PREWARM,
        inspectMemory: options.inspectMemory ?? false,
        defaultStackBytes: defaults.stackBytes,
      },
      defaults,
    )
    try {
      await Promise.all(Array.from({ length: pool.#options.workers }, () => pool.#spawn()))
    } catch (e) {
      await pool.close()
      throw e
    }
    return pool
  }

  #spawn(): Promise<WorkerSlot> {
    const id = `w${++this.#spawned}`
    const { port1, port2 } = new MessageChannel()
    const options = {
      workerData: { ...this.#boot, workerId: id, port: port2 } satisfies WorkerBoot,
      transferList: [port2],
      resourceLimits: { stackSizeMb: 64 },
    }
    const worker = runningFromSource
      ? // Node 20 ignores `--import` in a worker's execArgv: register tsx's hooks from inside it.
        new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}) })`,
          { ...options, eval: true },
        )
      : new Worker(new URL('./worker.js', import.meta.url), options)
    const slot: WorkerSlot = {
      id,
      worker,
      port: port1,
      active: new Map(),
      warm: 0,
      alive: false,
      lastUsedAt: 0,
    }
    return new Promise<WorkerSlot>((resolve, reject) => {
      const bootTimer = setTimeout(() => {
        void worker.terminate()
        reject(new Error('sluice: a sandbox worker did not start in time'))
      }, BOOT_TIMEOUT_MS)
      port1.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          clearTimeout(bootTimer)
          slot.alive = true
          slot.warm = message.warm
          this.#slots.push(slot)
          resolve(slot)
          this.#drain()
        } else if (message.type === 'boot-failed') {
          clearTimeout(bootTimer)
          void worker.terminate()
          reject(new Error(`sluice: a sandbox worker failed to start: ${message.message}`))
        } else {
          this.#onMessage(slot, message)
        }
      })
      worker.on('error', (e) => {
        if (!slot.alive) {
          clearTimeout(bootTimer)
          reject(new Error(`sluice: a sandbox worker failed to start: ${e.message}`))
        }
        this.#lost(slot)
      })
      worker.on('exit', () => {
        clearTimeout(bootTimer)
        port1.close()
        if (!slot.alive) reject(new Error('sluice: a sandbox worker exited during start-up'))
        this.#lost(slot)
      })
    })
  }

  /** Runs one execution. Never throws for anything the guest does. */
  execute(req: ExecuteRequest, options: ExecuteOptions = {}): Promise<SandboxOutcome> {
    const createdAt = performance.now()
    const limits: SandboxLimits = { ...this.#defaults, ...pickLimits(req.limits) }
    const early = (error: SandboxError): Promise<SandboxOutcome> =>
      Promise.resolve({
        ok: false,
        error,
        logs: [],
        timings: {
          queueMs: 0,
          acquireMs: 0,
          transpileMs: 0,
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
    return new Promise<SandboxOutcome>((resolve) => {
      const running: Running = {
        execId: this.#nextExecId++,
        req,
        limits,
        createdAt,
        postedAt: createdAt,
        worker: undefined,
        settle: resolve,
        settled: false,
        calls: new Map(),
        callsSeen: 0,
        watchdog: undefined,
        inspectNeedles: options.inspectMemory?.needles,
        onAbort: undefined,
      }
      if (req.signal) {
        running.onAbort = () => this.#cancel(running)
        req.signal.addEventListener('abort', running.onAbort, { once: true })
      }
      this.#queue.push(running)
      this.#drain()
    })
  }

  #drain(): void {
    while (this.#queue.length > 0) {
      const slot = this.#pickSlot()
      if (slot === undefined) return
      const running = this.#queue.shift()!
      this.#post(slot, running)
    }
  }

  /**
   * The least busy worker; among equals the one with a ready instance, then the one used least
   * recently (so one worker's clean-up after a run overlaps the next run in another).
   */
  #pickSlot(): WorkerSlot | undefined {
    let best: WorkerSlot | undefined
    for (const slot of this.#slots) {
      if (!slot.alive || slot.active.size >= EXECUTIONS_PER_WORKER) continue
      if (best === undefined || slot.active.size < best.active.size) best = slot
      else if (slot.active.size === best.active.size) {
        const ready = Math.min(slot.warm, 1) - Math.min(best.warm, 1)
        if (ready > 0 || (ready === 0 && slot.lastUsedAt < best.lastUsedAt)) best = slot
      }
    }
    return best
  }

  #post(slot: WorkerSlot, running: Running): void {
    running.worker = slot
    running.postedAt = performance.now()
    slot.lastUsedAt = running.postedAt
    // The worker reports its ready count after each refill; until then assume it used one.
    slot.warm = Math.max(0, slot.warm - 1)
    slot.active.set(running.execId, running)
    running.watchdog = setTimeout(
      () => this.#watchdogFired(running),
      running.limits.timeoutMs + this.#options.watchdogGraceMs,
    )
    this.#sendTo(slot, {
      type: 'execute',
      execId: running.execId,
      code: running.req.code,
      manifestJson: JSON.stringify(running.req.manifest),
      limits: running.limits,
      ...(running.inspectNeedles === undefined ? {} : { inspectNeedles: running.inspectNeedles }),
    })
  }

  #sendTo(slot: WorkerSlot, message: ToWorker): void {
    if (slot.alive) slot.port.postMessage(message)
  }

  #onMessage(slot: WorkerSlot, message: FromWorker): void {
    switch (message.type) {
      case 'warm':
        slot.warm = message.warm
        return
      case 'call': {
        const running = slot.active.get(message.execId)
        if (running === undefined || running.settled) return
        void this.#call(slot, running, message)
        return
      }
      case 'done': {
        const running = slot.active.get(message.execId)
        if (running === undefined) return
        slot.active.delete(message.execId)
        clearTimeout(running.watchdog)
        this.#executions++
        this.#complete(running, message.done)
        this.#drain()
        return
      }
      default:
        return
    }
  }

  async #call(
    slot: WorkerSlot,
    running: Running,
    message: Extract<FromWorker, { type: 'call' }>,
  ): Promise<void> {
    running.callsSeen++
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
      answerJson = this.#answerJson(message.server, message.tool, outcome, running.limits)
    } catch {
      answerJson = JSON.stringify({
        ok: false,
        code: 'INTERNAL',
        message: `the tool call ${message.server}.${message.tool} failed in the host`,
      })
    } finally {
      running.calls.delete(message.callId)
    }
    if (running.settled || running.worker !== slot) return
    this.#sendTo(slot, {
      type: 'answer',
      execId: running.execId,
      callId: message.callId,
      answerJson,
    })
  }

  #answerJson(
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

  #complete(running: Running, done: WorkerDone): void {
    if (running.settled) return
    let result: Json | undefined
    let ok = done.ok
    let error = done.error
    if (done.envelopeJson !== undefined) {
      try {
        const envelope = JSON.parse(done.envelopeJson) as { ok: boolean; result?: Json }
        result = envelope.result
      } catch {
        ok = false
        error = { code: 'INTERNAL', message: 'the sandbox returned an unreadable result' }
      }
    }
    const outcome: SandboxOutcome = {
      ok,
      ...(result === undefined ? {} : { result }),
      logs: done.logs,
      ...(error === undefined ? {} : { error }),
      timings: this.#timings(running, done),
      instanceId: done.instanceId,
      ...(done.memory === undefined ? {} : { memory: done.memory }),
    }
    this.#settle(running, outcome)
  }

  #timings(
    running: Running,
    done: { acquireMs: number; transpileMs: number; runMs: number },
  ): SandboxOutcome['timings'] {
    const now = performance.now()
    return {
      queueMs: running.postedAt - running.createdAt,
      acquireMs: done.acquireMs,
      transpileMs: done.transpileMs,
      runMs: done.runMs,
      totalMs: now - running.createdAt,
    }
  }

  #fail(running: Running, error: SandboxError): void {
    this.#settle(running, {
      ok: false,
      error,
      logs: [],
      timings: this.#timings(running, ZERO_TIMINGS),
      instanceId: '',
    })
  }

  #settle(running: Running, outcome: SandboxOutcome): void {
    if (running.settled) return
    running.settled = true
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
    else if (running.worker)
      this.#sendTo(running.worker, { type: 'cancel', execId: running.execId })
    this.#fail(running, { code: 'CANCELLED', message: 'the execution was cancelled' })
  }

  #watchdogFired(running: Running): void {
    const slot = running.worker
    if (slot === undefined || !slot.active.has(running.execId)) return
    this.#fail(running, {
      code: 'TIMEOUT',
      message: `the execution ran longer than ${running.limits.timeoutMs} ms`,
    })
    void slot.worker.terminate()
    this.#lost(slot)
  }

  /** A worker died or was killed: answer or requeue what it held, and start a replacement. */
  #lost(slot: WorkerSlot): void {
    const wasAlive = slot.alive
    slot.alive = false
    const index = this.#slots.indexOf(slot)
    if (index >= 0) this.#slots.splice(index, 1)
    const orphans = [...slot.active.values()]
    slot.active.clear()
    const requeue: Running[] = []
    for (const running of orphans) {
      clearTimeout(running.watchdog)
      if (running.settled) continue
      if (running.callsSeen === 0 && running.inspectNeedles === undefined) {
        running.worker = undefined
        requeue.push(running)
      } else {
        this.#fail(running, {
          code: 'INTERNAL',
          message: 'the sandbox worker was restarted during this execution',
        })
      }
    }
    this.#queue.unshift(...requeue)
    if (wasAlive && !this.#closed) {
      this.#respawns++
      this.#spawn().catch(() => {
        // Without workers, queued executions would wait forever: fail them.
        if (this.#slots.length === 0) {
          for (const running of this.#queue.splice(0)) {
            this.#fail(running, { code: 'INTERNAL', message: 'no sandbox worker is available' })
          }
        }
      })
    }
  }

  stats(): SandboxStats {
    const alive = this.#slots.filter((s) => s.alive)
    return {
      workers: alive.length,
      busy: alive.filter((s) => s.active.size > 0).length,
      queued: this.#queue.length,
      ready: alive.reduce((n, s) => n + s.warm, 0),
      respawns: this.#respawns,
      executions: this.#executions,
    }
  }

  /** Stops the workers. Executions still queued or running end with INTERNAL. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const slots = this.#slots.splice(0)
    for (const running of this.#queue.splice(0))
      this.#fail(running, { code: 'INTERNAL', message: 'the sandbox pool was closed' })
    await Promise.all(
      slots.map(async (slot) => {
        slot.alive = false
        for (const running of slot.active.values()) {
          clearTimeout(running.watchdog)
          this.#fail(running, { code: 'INTERNAL', message: 'the sandbox pool was closed' })
        }
        slot.active.clear()
        slot.port.close()
        await slot.worker.terminate()
      }),
    )
  }
}
