/**
 * Messages between the pool (main thread) and a sandbox worker. Structured-cloned, so only
 * plain data; tool arguments and results travel as JSON text and are parsed at the far end.
 *
 * @module
 */
import type { MessagePort } from 'node:worker_threads'
import type { MemoryInspection, SandboxError, SandboxLimits } from './types.js'

/** A compiled `WebAssembly.Module` (structured-cloneable; Node's types do not all declare it). */
export type CompiledWasm = object

export interface WorkerBoot {
  workerId: string
  wasmModule: CompiledWasm
  preludeSource: string
  prewarm: number
  inspectMemory: boolean
  defaultStackBytes: number
  /** The worker's end of the pool's channel (transferred). */
  port?: MessagePort
}

export type ToWorker =
  | {
      type: 'execute'
      execId: number
      code: string
      manifestJson: string
      limits: SandboxLimits
      inspectNeedles?: string[]
    }
  | { type: 'answer'; execId: number; callId: number; answerJson: string }
  | { type: 'cancel'; execId: number }

export interface WorkerDone {
  ok: boolean
  /** The run envelope as JSON text (`{"ok":true,"result":…}`), parsed on the main thread. */
  envelopeJson?: string
  error?: SandboxError
  logs: string[]
  /** From the request's arrival in the worker until a ready instance was in hand. */
  acquireMs: number
  transpileMs: number
  runMs: number
  instanceId: string
  memory?: MemoryInspection
}

export type FromWorker =
  | { type: 'ready'; warm: number }
  | { type: 'warm'; warm: number }
  | { type: 'boot-failed'; message: string }
  | {
      type: 'call'
      execId: number
      callId: number
      server: string
      tool: string
      argsJson: string
      argsBytes: number
      index: number
    }
  | { type: 'done'; execId: number; done: WorkerDone }
