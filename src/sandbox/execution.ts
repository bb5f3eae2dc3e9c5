/**
 * One execution inside a worker: install the prelude, compile and run the model's program,
 * bridge its tool calls to the main thread, and read its outcome.
 *
 * The outcome is read by the host, not announced by the guest. The prelude calls `settled` from
 * the promise job that settles the body; from that moment the dispatcher and the log are closed
 * (a call or a log line from a job queued behind it never reaches the host), the host gives
 * itself a little time and memory beyond the guest's limits, and calls the prelude's
 * serialiser, which runs no guest code. What it returns is checked again (envelope.ts).
 *
 * The driver rules of research/quickjs-measurements.md §4 apply: pump jobs after every resolve,
 * keep a wall-clock timer (a guest parked on a never-settling promise never reaches the
 * interrupt handler). Builtins that ignore the interrupt handler meet the instance's clock,
 * which the fuel checks call (clock.ts).
 *
 * @module
 */
import { randomFillSync } from 'node:crypto'
import type {
  QuickJSContext,
  QuickJSDeferredPromise,
  QuickJSHandle,
  QuickJSRuntime,
} from 'quickjs-emscripten-core'
import type { GuestOptions, SerializeBounds } from '../../runtime/protocol.js'
import { stripInvisible } from '../text.js'
import { DEADLINE_PASSED } from './clock.js'
import {
  checkDescribed,
  checkSerialized,
  jsonDepthOver,
  MAX_WARNINGS,
  type JsPosition,
  type ProgramShape,
} from './envelope.js'
import { findNeedles, type Instance } from './instances.js'
import type { FromWorker, WireAnswer, WireCall, WireProgram, WorkerDone } from './messages.js'
import type { SandboxError, SandboxLimits, SandboxWarning } from './types.js'

const MODEL_FILE = 'model.ts'
/** Shares the body's first line, so line numbers in guest-visible stacks match the model's. */
const WRAP_HEAD = '(async function () {'
const WRAP_TAIL = '\n})'
/** Jobs run between two checks of the clock. */
const JOB_BATCH = 256
/** Time the host gives itself to read an outcome, past the guest's own deadline if need be. */
export const READ_GRACE_MS = 1000
/** How long after the deadline the clock stops builtins that ignore the interrupt handler. */
const CLOCK_GRACE_MS = 50
/** Longest server or tool name a call may carry (MCP tool names are at most 128). */
const MAX_NAME_CHARS = 256
/** Names of unsettled calls reported at most. */
const MAX_UNSETTLED_NAMES = 20
/** Memory the host adds to the guest's limit while it reads an outcome. */
const READ_HEADROOM_BYTES = 4 * 1024 * 1024

type Sink = (message: FromWorker) => void

interface PendingCall {
  callId: number
  deferred: QuickJSDeferredPromise
  server: string
  tool: string
  argsJson: string
  argsBytes: number
  index: number
}

export interface ExecutionSetup {
  execId: number
  instance: Instance
  limits: SandboxLimits
  program: WireProgram
  acquireMs: number
  /** Epoch milliseconds at which the execution's time is up. */
  deadline: number
  sink: Sink
  needles: string[] | undefined
  /** The guest's `Math.random` seed; undefined draws a fresh one. */
  randomSeed: [number, number, number, number] | undefined
  /** Called once the result has been sent, with whether the instance must not be reused. */
  onFinished(execution: Execution, poisoned: boolean): void
}

type Phase = 'running' | 'reading' | 'closed'

export class Execution {
  readonly execId: number
  #phase: Phase = 'running'
  #poisoned = false
  /** The deadline the interrupt handler and the clock enforce: the guest's, then the reader's. */
  #deadline: number
  readonly #inFlight = new Map<number, PendingCall>()
  readonly #waiting: PendingCall[] = []
  /** Calls made since the last message to the pool: one batch of jobs, one message. */
  #outbox: WireCall[] = []
  /** Refusals queued as microtasks: the worker must not sleep before they reach the guest. */
  #refusalsQueued = 0
  #timer: NodeJS.Timeout | undefined
  #nextCallId = 0
  #accepted = 0
  readonly #logs: string[] = []
  #logBytes = 0
  #droppedLogBytes = 0
  readonly #startedAt = performance.now()
  #api: QuickJSHandle | undefined
  #needlesAtStart: string[] = []
  readonly #setup: ExecutionSetup
  readonly #rt: QuickJSRuntime
  readonly #ctx: QuickJSContext
  readonly #shape: ProgramShape

  constructor(setup: ExecutionSetup) {
    this.#setup = setup
    this.execId = setup.execId
    this.#deadline = setup.deadline
    this.#rt = setup.instance.rt
    this.#ctx = setup.instance.ctx
    this.#shape = { lines: setup.program.lines, headColumns: WRAP_HEAD.length }
  }

  get #limits(): SandboxLimits {
    return this.#setup.limits
  }

  /** Whether the guest is running and waits for at least one answer from the host. */
  get waitingOnHost(): boolean {
    return this.#phase === 'running' && this.#inFlight.size > 0 && this.#refusalsQueued === 0
  }

  /** Epoch milliseconds at which the current phase's time is up. */
  get deadline(): number {
    return this.#deadline
  }

  start(manifestJson: string): void {
    const ctx = this.#ctx
    const rt = this.#rt
    const { clock } = this.#setup.instance
    try {
      // The interrupt handler stops ordinary code at the deadline with a stack that says where
      // it was; the clock is for builtins that never reach that handler, a little later.
      clock.deadline = this.#deadline + CLOCK_GRACE_MS
      clock.tick()
      rt.setMemoryLimit(this.#limits.memoryBytes)
      rt.setMaxStackSize(this.#limits.stackBytes)
      rt.setInterruptHandler(() => this.#phase === 'closed' || Date.now() > this.#deadline)
      this.#timer = setTimeout(() => this.#timeUp(), Math.max(0, this.#deadline - Date.now()))

      const dispatch = ctx.newFunction('dispatch', (...args) => this.#dispatch(args))
      const log = ctx.newFunction('log', (arg) => this.#log(arg))
      const settled = ctx.newFunction('settled', (kind, value) => {
        try {
          this.#settled(
            kind !== undefined && ctx.typeof(kind) === 'number' && ctx.getNumber(kind) === 1,
            value,
          )
        } catch (e) {
          // Thrown out of a host function, it would only become a guest exception.
          this.#hostFailure(e)
        }
        return ctx.undefined
      })
      const manifest = ctx.newString(manifestJson)
      const options: GuestOptions = { randomSeed: this.#setup.randomSeed ?? randomSeed() }
      const guestOptions = ctx.newString(JSON.stringify(options))
      const installed = ctx.callFunction(
        this.#setup.instance.install,
        ctx.undefined,
        dispatch,
        log,
        settled,
        manifest,
        guestOptions,
      )
      if (installed.error) {
        this.#finish({
          ok: false,
          error: { code: 'INTERNAL', message: 'the sandbox runtime did not start' },
        })
        return
      }
      this.#api = installed.value
      const needles = this.#setup.needles
      if (needles !== undefined)
        this.#needlesAtStart = findNeedles(this.#setup.instance.memory, needles)

      const compiled = ctx.evalCode(WRAP_HEAD + this.#setup.program.js + WRAP_TAIL, MODEL_FILE)
      if (compiled.error) {
        this.#failWith(compiled.error, 'compile')
        return
      }
      const run = ctx.getProp(this.#api, 'run')
      const started = ctx.callFunction(run, this.#api, compiled.value)
      if (started.error) {
        this.#failWith(started.error, 'run')
        return
      }
      this.#pump()
    } catch (e) {
      this.#hostFailure(e)
    }
  }

  /** Runs pending jobs in batches until the guest waits on the host or its outcome is read. */
  #pump(): void {
    if (this.#phase === 'closed') return
    try {
      for (;;) {
        const jobs = this.#rt.executePendingJobs(JOB_BATCH)
        // A job may have settled the body and closed the execution.
        if (this.#closed()) return
        if (jobs.error) {
          if (this.#phase === 'reading') this.#finish({ ok: false, error: readTimeoutError() })
          else this.#failWith(jobs.error, 'run')
          return
        }
        if (Date.now() > this.#deadline) {
          this.#finish({ ok: false, error: timeoutError(this.#limits.timeoutMs) })
          return
        }
        if (jobs.value < JOB_BATCH) return
      }
    } catch (e) {
      this.#hostFailure(e)
    } finally {
      this.#flushCalls()
    }
  }

  #flushCalls(): void {
    if (this.#outbox.length === 0) return
    const calls = this.#outbox
    this.#outbox = []
    this.#setup.sink({ type: 'calls', execId: this.execId, calls })
  }

  // ── reading the outcome ───────────────────────────────────────────────────────────────────

  /** The prelude saw the body settle: close the channels and read the value, once. */
  #settled(rejected: boolean, value: QuickJSHandle | undefined): void {
    if (this.#phase !== 'running' || value === undefined) return
    if (rejected) {
      this.#failWith(value, 'run')
      return
    }
    const read = this.#read('serialize', value, this.#ctx.newString(JSON.stringify(this.#bounds())))
    if (read.kind === 'failed') {
      this.#finish({ ok: false, error: read.error })
      return
    }
    const checked = checkSerialized(read.text, this.#limits)
    if (checked.ok) {
      const unsettled = this.#unsettledCalls()
      this.#finish({
        ok: true,
        warnings: checked.warnings,
        ...(checked.resultJson === undefined ? {} : { resultJson: checked.resultJson }),
        ...(unsettled.length === 0 ? {} : { unsettledCalls: unsettled }),
      })
    } else {
      this.#finish({ ok: false, error: checked.error, warnings: checked.warnings })
    }
  }

  /**
   * Calls the guest made and never waited for: still at the host, or queued behind the
   * concurrency limit, when the body settled. Counted by the host, not reported by the guest.
   */
  #unsettledCalls(): string[] {
    const names: string[] = []
    for (const call of [...this.#inFlight.values(), ...this.#waiting]) {
      if (names.length >= MAX_UNSETTLED_NAMES) break
      names.push(`${call.server}.${call.tool}`)
    }
    return names
  }

  #bounds(): SerializeBounds {
    // The guest counts characters: no more than the bytes the host accepts.
    return {
      maxChars: this.#limits.maxOutputBytes,
      maxDepth: this.#limits.maxOutputDepth,
      maxWarnings: MAX_WARNINGS,
    }
  }

  /** The execution failed with a thrown value (`handle`), in compiling or in running. */
  #failWith(handle: QuickJSHandle, stage: 'compile' | 'run'): void {
    if (this.#phase !== 'running') return
    if (this.#timedOut()) {
      // Where the code was when it was stopped, if the stack names a place in the model's code.
      const read = this.#read('describe', handle)
      const at = read.kind === 'text' ? checkDescribed(read.text, this.#shape, true).at : undefined
      const inCode = at !== undefined && !(at.line === 1 && at.column <= 1)
      this.#finish({
        ok: false,
        error: timeoutError(this.#limits.timeoutMs),
        ...(inCode ? { errorAt: at } : {}),
      })
      return
    }
    const read = this.#read('describe', handle)
    if (read.kind === 'failed') {
      this.#finish({ ok: false, error: read.error })
      return
    }
    const { error, at } = checkDescribed(read.text, this.#shape, false)
    if (stage === 'compile' && error.code === 'RUNTIME_ERROR') error.code = 'SYNTAX_ERROR'
    this.#finish({ ok: false, error, ...(at === undefined ? {} : { errorAt: at }) })
  }

  /**
   * Calls one of the prelude's readers with a little more time and memory than the guest had.
   * Nothing of the guest's runs here, so the extra cannot be spent by model code.
   */
  #read(
    reader: 'serialize' | 'describe',
    value: QuickJSHandle,
    extra?: QuickJSHandle,
  ): { kind: 'text'; text: string } | { kind: 'failed'; error: SandboxError } {
    const ctx = this.#ctx
    this.#phase = 'reading'
    this.#deadline = Date.now() + READ_GRACE_MS
    this.#setup.instance.clock.deadline = this.#deadline
    this.#rt.setMemoryLimit(
      this.#limits.memoryBytes + 4 * this.#limits.maxOutputBytes + READ_HEADROOM_BYTES,
    )
    const api = this.#api
    if (api === undefined)
      return {
        kind: 'failed',
        error: { code: 'INTERNAL', message: 'the sandbox runtime did not start' },
      }
    const fn = ctx.getProp(api, reader)
    const out =
      extra === undefined
        ? ctx.callFunction(fn, api, value)
        : ctx.callFunction(fn, api, value, extra)
    if (out.error || ctx.typeof(out.value) !== 'string') {
      const error: SandboxError =
        Date.now() > this.#deadline
          ? readTimeoutError()
          : {
              code: 'OUTPUT_LIMIT',
              message: 'the outcome could not be read within the sandbox memory',
            }
      return { kind: 'failed', error }
    }
    return { kind: 'text', text: ctx.getString(out.value) }
  }

  #closed(): boolean {
    return this.#phase === 'closed'
  }

  #timedOut(): boolean {
    return this.#setup.instance.clock.expired || Date.now() > this.#setup.deadline
  }

  // ── tool calls and logs ───────────────────────────────────────────────────────────────────

  #dispatch(args: QuickJSHandle[]): QuickJSHandle {
    const ctx = this.#ctx
    const [serverH, toolH, argsH] = args
    if (
      serverH === undefined ||
      toolH === undefined ||
      argsH === undefined ||
      [serverH, toolH, argsH].some((h) => ctx.typeof(h) !== 'string')
    ) {
      throw new TypeError('dispatch(server, tool, argsJson) takes three strings')
    }
    const deferred = ctx.newPromise()
    // After the body settled, or past the deadline, nothing more reaches the host.
    if (this.#phase !== 'running' || this.#setup.instance.clock.expired) return deferred.handle
    const server = jsonText(ctx.getString(serverH))
    const tool = jsonText(ctx.getString(toolH))
    const argsJson = ctx.getString(argsH)
    if (server === undefined || tool === undefined)
      throw new TypeError('dispatch: server and tool are JSON strings')
    const argsBytes = Buffer.byteLength(argsJson)
    const name = `${server}.${tool}`
    const limits = this.#limits
    let refusal: string | undefined
    if (server.length > MAX_NAME_CHARS || tool.length > MAX_NAME_CHARS) {
      // Names now reach the host even when they are in no manifest: keep them small.
      refusal = answerJson(
        'UNKNOWN_TOOL',
        `no tool has a name longer than ${MAX_NAME_CHARS} characters`,
      )
    } else if (argsBytes > limits.maxArgsBytes) {
      refusal = answerJson(
        'INVALID_ARGS',
        `arguments of ${name} are ${argsBytes} bytes, over the limit of ${limits.maxArgsBytes}`,
      )
    } else if (jsonDepthOver(argsJson, limits.maxArgsDepth)) {
      refusal = answerJson(
        'INVALID_ARGS',
        `arguments of ${name} are nested deeper than ${limits.maxArgsDepth} levels`,
      )
    } else if (this.#accepted >= limits.maxToolCalls) {
      refusal = answerJson(
        'CALL_LIMIT',
        `more than ${limits.maxToolCalls} tool calls in one execution`,
      )
    }
    if (refusal !== undefined) {
      // Answer after the current job batch, never re-entering QuickJS from inside a host call.
      const answer = refusal
      this.#refusalsQueued++
      queueMicrotask(() => {
        this.#refusalsQueued--
        this.#resolve(deferred, answer)
      })
      return deferred.handle
    }
    const call: PendingCall = {
      callId: this.#nextCallId++,
      deferred,
      server,
      tool,
      argsJson,
      argsBytes,
      index: this.#accepted++,
    }
    if (this.#inFlight.size < limits.maxConcurrentCalls) this.#send(call)
    else this.#waiting.push(call)
    return deferred.handle
  }

  #send(call: PendingCall): void {
    this.#inFlight.set(call.callId, call)
    this.#outbox.push({
      callId: call.callId,
      server: call.server,
      tool: call.tool,
      argsJson: call.argsJson,
      argsBytes: call.argsBytes,
      index: call.index,
    })
  }

  /** Answers that arrived together: all are resolved, then the jobs they queued run once. */
  answers(answers: readonly WireAnswer[]): void {
    if (this.#phase !== 'running') return
    let resolved = false
    try {
      for (const { callId, answerJson } of answers) {
        const call = this.#inFlight.get(callId)
        if (call === undefined || this.#phase !== 'running') continue
        this.#inFlight.delete(callId)
        const next = this.#waiting.shift()
        if (next !== undefined) this.#send(next)
        // The guest's clock moves at I/O only.
        this.#setup.instance.clock.tick()
        resolved = this.#settle(call.deferred, answerJson) || resolved
      }
    } catch (e) {
      this.#hostFailure(e)
      return
    }
    if (resolved) this.#pump()
    else this.#flushCalls()
  }

  #resolve(deferred: QuickJSDeferredPromise, json: string): void {
    try {
      if (this.#settle(deferred, json)) this.#pump()
    } catch (e) {
      this.#hostFailure(e)
    }
  }

  /** Resolves a guest promise without running the jobs that queues; false if it is gone. */
  #settle(deferred: QuickJSDeferredPromise, json: string): boolean {
    if (this.#phase !== 'running' || !deferred.alive) return false
    const value = this.#ctx.newString(json)
    deferred.resolve(value)
    value.dispose()
    return true
  }

  #log(arg: QuickJSHandle | undefined): QuickJSHandle {
    const ctx = this.#ctx
    if (arg === undefined || this.#phase !== 'running' || this.#setup.instance.clock.expired)
      return ctx.false
    if (ctx.typeof(arg) === 'number') {
      this.#droppedLogBytes += Math.max(0, Math.floor(ctx.getNumber(arg)))
      return ctx.false
    }
    if (ctx.typeof(arg) !== 'string') return ctx.false
    let line: unknown
    try {
      line = JSON.parse(ctx.getString(arg))
    } catch {
      return ctx.false
    }
    if (typeof line !== 'string') return ctx.false
    const bytes = Buffer.byteLength(line)
    if (this.#droppedLogBytes === 0 && this.#logBytes + bytes <= this.#limits.maxLogBytes) {
      this.#logs.push(stripInvisible(line))
      this.#logBytes += bytes
      return ctx.true
    }
    this.#droppedLogBytes += bytes
    return ctx.false
  }

  // ── endings ───────────────────────────────────────────────────────────────────────────────

  #timeUp(): void {
    if (this.#phase === 'running')
      this.#finish({ ok: false, error: timeoutError(this.#limits.timeoutMs) })
    else if (this.#phase === 'reading') this.#finish({ ok: false, error: readTimeoutError() })
  }

  cancel(): void {
    if (this.#phase === 'running') {
      this.#finish({
        ok: false,
        error: { code: 'CANCELLED', message: 'the execution was cancelled' },
      })
    }
  }

  /** A host-level exception out of WebAssembly: the instance is poisoned. */
  #hostFailure(e: unknown): void {
    if (this.#phase === 'closed') return
    this.#poisoned = true
    const error: SandboxError =
      this.#phase === 'reading' && (e === DEADLINE_PASSED || Date.now() > this.#deadline)
        ? readTimeoutError()
        : e === DEADLINE_PASSED || this.#timedOut()
          ? timeoutError(this.#limits.timeoutMs)
          : e instanceof RangeError
            ? {
                code: 'STACK_LIMIT',
                message: 'stack overflow: the execution reached its stack limit',
              }
            : { code: 'INTERNAL', message: 'the sandbox failed while running this execution' }
    this.#finish({ ok: false, error })
  }

  #finish(result: {
    ok: boolean
    resultJson?: string
    unsettledCalls?: string[]
    warnings?: SandboxWarning[]
    error?: SandboxError
    errorAt?: JsPosition
  }): void {
    if (this.#phase === 'closed') return
    this.#phase = 'closed'
    // Whatever the guest still had queued meets the clock at its next fuel check.
    this.#setup.instance.clock.deadline = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    const logs = this.#logs
    if (this.#droppedLogBytes > 0)
      logs.push(`[logs truncated: ${this.#droppedLogBytes} bytes dropped]`)
    const done: WorkerDone = {
      ok: result.ok,
      ...(result.resultJson === undefined ? {} : { resultJson: result.resultJson }),
      warnings: result.warnings ?? [],
      ...(result.error === undefined ? {} : { error: result.error }),
      ...(result.errorAt === undefined ? {} : { errorAt: result.errorAt }),
      ...(result.unsettledCalls === undefined ? {} : { unsettledCalls: result.unsettledCalls }),
      logs,
      acquireMs: this.#setup.acquireMs,
      runMs: performance.now() - this.#startedAt,
      instanceId: this.#setup.instance.id,
    }
    const needles = this.#setup.needles
    if (needles !== undefined) {
      // Inspection reads the memory as the run left it, before the scrub.
      const { inspection, memory } = this.#setup.instance
      done.memory = {
        ...inspection,
        nonZeroBytesBeforeInstantiation: inspection?.nonZeroBytesBeforeInstantiation ?? -1,
        needlesAtStart: this.#needlesAtStart,
        needlesAfterRun: findNeedles(memory, needles),
      }
    }
    // Calls the guest made in its last jobs reach the host as before (and are aborted there).
    this.#flushCalls()
    // The result goes out first; the instance is retired after.
    this.#setup.sink({ type: 'done', execId: this.execId, done })
    this.#setup.onFinished(this, this.#poisoned)
  }
}

/** The string a JSON text holds, else undefined. */
function jsonText(json: string): string | undefined {
  try {
    const value: unknown = JSON.parse(json)
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

function answerJson(code: string, message: string): string {
  return JSON.stringify({ ok: false, code, message })
}

function readTimeoutError(): SandboxError {
  return { code: 'TIMEOUT', message: `the outcome could not be read within ${READ_GRACE_MS} ms` }
}

export function timeoutError(timeoutMs: number): SandboxError {
  return { code: 'TIMEOUT', message: `the execution ran longer than ${timeoutMs} ms` }
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
