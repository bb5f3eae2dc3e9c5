/**
 * Messages between the pool (main thread) and a sandbox worker. Structured-cloned, so only
 * plain data; tool arguments and results travel as JSON text and are parsed at the far end.
 *
 * A worker runs one execution at a time: the pool sends `execute` only to a worker that has
 * reported `ready` or `done` since its last `execute`.
 *
 * @module
 */
import type { MessagePort } from 'node:worker_threads'
import type { JsPosition } from './envelope.js'
import type { MemoryInspection, SandboxError, SandboxLimits, SandboxWarning } from './types.js'

/** A compiled `WebAssembly.Module` (structured-cloneable; Node's types do not all declare it). */
export type CompiledWasm = object

/** What every worker of a process shares, made once on the main thread. */
export interface WorkerModule {
  /** The fuel-instrumented QuickJS module, compiled once per process. */
  wasmModule: CompiledWasm
  /** The guest prelude, already JavaScript. */
  preludeJs: string
}

/**
 * A worker's start. Without `module`, the worker starts (its own imports) while the main thread
 * still compiles, and the module comes as the first message (`{ type: 'module' }`).
 */
export interface WorkerBoot {
  workerId: string
  module?: WorkerModule
  prewarm: number
  templates: boolean
  /** Test hook: the first stamp fails (SandboxPoolOptions.faultTemplateReplay). */
  faultTemplateReplay?: boolean
  inspectMemory: boolean
  defaultStackBytes: number
  /** The worker's end of the pool's channel (transferred). */
  port?: MessagePort
  /**
   * One Int32 the pool increments (and notifies) after each message it posts to this worker, so
   * a worker whose guest waits on the host can sleep in `Atomics.wait` and take the answer with
   * `receiveMessageOnPort`, instead of a round through its event loop.
   */
  wake?: SharedArrayBuffer
  /**
   * One Int32 shared by every worker of the pool: how many of them run an execution now (the
   * pool keeps it). A waiting worker spins for the host's answer only while that count leaves a
   * core to spare (see worker.ts `awaitAnswers`).
   */
  running?: SharedArrayBuffer
}

/** The model's program as the worker runs it: JavaScript, wrapped as an async function body. */
export interface WireProgram {
  js: string
  /** Lines of `js`, for checking positions reported from inside the guest. */
  lines: number
}

export type ToWorker =
  | ({ type: 'module' } & WorkerModule)
  | {
      type: 'execute'
      execId: number
      program: WireProgram
      manifestJson: string
      limits: SandboxLimits
      inspectNeedles?: string[]
      randomSeed?: [number, number, number, number]
    }
  | { type: 'answers'; execId: number; answers: WireAnswer[] }
  | { type: 'cancel'; execId: number }

/** One tool call's answer; the pool sends those ready at the same moment in one message. */
export interface WireAnswer {
  callId: number
  answerJson: string
}

/** One tool call; the worker sends those its guest made in one batch of jobs in one message. */
export interface WireCall {
  callId: number
  server: string
  tool: string
  argsJson: string
  argsBytes: number
  index: number
}

export interface WorkerDone {
  ok: boolean
  /** The result's JSON text, measured and depth-checked; absent for `undefined`. */
  resultJson?: string
  warnings: SandboxWarning[]
  error?: SandboxError
  /** Where the error happened, in the transpiled program (the pool maps it to the source). */
  errorAt?: JsPosition
  /** `server.tool` of calls still pending when the body settled (successful runs only). */
  unsettledCalls?: string[]
  logs: string[]
  /** From the request's arrival in the worker until a ready instance was in hand. */
  acquireMs: number
  runMs: number
  instanceId: string
  memory?: MemoryInspection
}

export type FromWorker =
  | { type: 'ready' }
  | { type: 'boot-failed'; message: string }
  | { type: 'template-fallback'; reason: string }
  | { type: 'calls'; execId: number; calls: WireCall[] }
  | { type: 'done'; execId: number; done: WorkerDone }
