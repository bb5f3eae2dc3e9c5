/**
 * The sandbox's public nouns. The engine codes against exactly these; the sandbox itself knows
 * nothing of tools, policy or MCP beyond a manifest of names and one callback.
 *
 * @module
 */
import type { CodeFacts } from './facts.js'
import type { Limits } from '../config/index.js'
import type { Json } from '../types.js'

/** One inner tool call, as the host callback sees it. `args` is a fresh `JSON.parse` result. */
export interface SandboxCall {
  /** Server key from the manifest (the config key). */
  server: string
  /** The upstream's own tool name (the manifest's value, not the sanitised identifier). */
  tool: string
  args: Json
  /** UTF-8 size of the serialised arguments. */
  argsBytes: number
  /** 0-based number of this call among the calls of the execution that reached the host. */
  index: number
}

export type SandboxCallOutcome =
  { ok: true; value: Json } | { ok: false; code: string; message: string }

export type SandboxLimits = Pick<
  Limits,
  | 'timeoutMs'
  | 'memoryBytes'
  | 'stackBytes'
  | 'maxSourceBytes'
  | 'maxToolCalls'
  | 'maxConcurrentCalls'
  | 'maxArgsBytes'
  | 'maxArgsDepth'
  | 'maxResultBytes'
  | 'maxOutputBytes'
  | 'maxOutputDepth'
  | 'maxLogBytes'
>

/** server key → sanitised identifier → the upstream's own tool name. */
export interface ToolManifest {
  [server: string]: { [ident: string]: string }
}

export interface ExecuteRequest {
  /** The model's TypeScript: the body of an async function. */
  code: string
  manifest: ToolManifest
  limits?: Partial<SandboxLimits>
  /**
   * Runs one inner call. Its outcome message reaches the guest as is, so sanitise it first. A
   * throw or rejection reaches the guest as `INTERNAL` with a fixed message. `signal` aborts
   * when the execution ends (or is cancelled) before the call is answered.
   */
  onCall(call: SandboxCall, signal: AbortSignal): Promise<SandboxCallOutcome>
  /** Aborting it ends the execution with `CANCELLED`. */
  signal?: AbortSignal
  /**
   * Seeds the guest's `Math.random` (four 32-bit words); default a fresh random seed. A resumed
   * execution passes the seed of its first run, so a replay draws the same numbers.
   */
  randomSeed?: RandomSeed
}

/** Four 32-bit words seeding the guest's `Math.random`. */
export type RandomSeed = [number, number, number, number]

export interface SandboxError {
  code: string
  message: string
  /** 1-based, in the model's own source. */
  line?: number
  /** 1-based, in the model's own source (best effort where sucrase removed type syntax). */
  column?: number
}

/** Something in a successful result that is probably a mistake (a Promise, a Map, a getter…). */
export interface SandboxWarning {
  code: string
  message: string
  /** Where in the result, as `result.items[2].when`. */
  path?: string
  /** 1-based line in the model's own source, when the host can name it. */
  line?: number
}

export interface SandboxOutcome {
  ok: boolean
  /** Absent when the code produced `undefined` (or failed). */
  result?: Json
  logs: string[]
  /** Findings about the result that did not stop it (empty when there are none). */
  warnings: SandboxWarning[]
  error?: SandboxError
  /**
   * On success: `server.tool` of calls the code made and did not wait for (still running when it
   * returned). Absent when there are none.
   */
  unsettledCalls?: string[]
  /** What the source does that models often do not mean (facts.ts); absent before transpiling. */
  facts?: CodeFacts
  /**
   * `queueMs`: waiting on the main thread for a worker; `acquireMs`: from the request's arrival in
   * the worker until a ready instance was in hand (0 when none was needed); `totalMs`: wall time
   * of `execute`, which also holds the two message hops.
   */
  timings: {
    queueMs: number
    acquireMs: number
    transpileMs: number
    runMs: number
    totalMs: number
  }
  /** Unique per WASM instance ('' when no instance was used, e.g. a syntax error). */
  instanceId: string
  /** Only with `SandboxPoolOptions.inspectMemory` and `ExecuteOptions.inspectMemory`: for tests. */
  memory?: MemoryInspection
}

/** Evidence about the linear memory an execution received and left behind (test hook). */
export interface MemoryInspection {
  /** The instance that used this memory before, when it was recycled. */
  recycledFrom?: string
  /** Non-zero bytes in the memory right before this instance was created in it. */
  nonZeroBytesBeforeInstantiation: number
  /** Bytes the last scrub of a recycled memory examined (less than all when it stopped at the heap's top). */
  scrubbedBytes?: number
  /** Needles found in this instance's memory before the model's code entered it. */
  needlesAtStart: string[]
  /** Needles found in this instance's memory after its run, before scrubbing. */
  needlesAfterRun: string[]
}

export interface ExecuteOptions {
  /** Test hook: scan the linear memory for these strings (needs the pool's `inspectMemory`). */
  inspectMemory?: { needles: string[] }
}

/** Things the pool tells its owner about (for logs and metrics; the sandbox has neither). */
export type SandboxEvent =
  | { type: 'template-fallback'; workerId: string; reason: string }
  | { type: 'worker-lost'; workerId: string; reason: string }

export interface SandboxPoolOptions {
  /**
   * Worker threads kept running, each hosting one execution at a time. Default: min(2, cores).
   */
  workers?: number
  /** Most worker threads at once (more start while executions wait). Default: max(8, workers). */
  maxWorkers?: number
  /** A worker above `workers` that stays idle this long is stopped. Default 30000 ms. */
  idleWorkerMs?: number
  /** Ready instances kept per worker. Default 1. */
  prewarm?: number
  /** Extra time after `timeoutMs` before a stuck worker is terminated. Default 250 ms. */
  watchdogGraceMs?: number
  defaultLimits?: Partial<SandboxLimits>
  /** Test hook: record memory evidence at instantiation (costs a 16 MiB scan per instance). */
  inspectMemory?: boolean
  /** Test hook: start with instance templates off, as after a template failure. */
  templates?: boolean
  /** Test hook: make the first stamp of each worker fail, as a library update might. */
  faultTemplateReplay?: boolean
  onEvent?: (event: SandboxEvent) => void
}

export interface SandboxStats {
  /** Worker threads alive (busy or idle). */
  workers: number
  /** Workers running an execution. */
  busy: number
  /** Workers starting up. */
  starting: number
  queued: number
  /** Instances ready for the next execution, over all workers. */
  ready: number
  /** Workers replaced after a crash, a watchdog kill or a template failure. */
  respawns: number
  executions: number
  /** Template failures seen (each replaced its worker). */
  templateFallbacks: number
}
