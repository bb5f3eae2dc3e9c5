/**
 * The wire between the guest prelude (runtime/prelude.ts, inside QuickJS) and the host driver
 * (src/sandbox/, in a worker thread). Only JSON text and these shapes cross it; src/ imports
 * this file with `import type` only, so nothing here may be a runtime value.
 *
 * The host trusts none of it: whatever the prelude reports is measured and checked again on the
 * host side (src/sandbox/envelope.ts), because model code shares the realm the prelude runs in.
 *
 * @module
 */

/** A JSON value as it crosses the boundary. */
export type WireJson = null | boolean | number | string | WireJson[] | { [key: string]: WireJson }

/** Tools the guest may call: server key → sanitised identifier → the upstream's own tool name. */
export interface WireManifest {
  [server: string]: { [ident: string]: string }
}

/** Per-execution settings for the prelude. */
export interface GuestOptions {
  /**
   * Seeds `Math.random` (four unsigned 32-bit words, not all zero). Instances are stamped from a
   * template, so QuickJS's own generator would start every execution in the same state.
   */
  randomSeed: [number, number, number, number]
}

/** Bounds the result serialiser stops at, so the guest never builds more than the host takes. */
export interface SerializeBounds {
  maxChars: number
  maxDepth: number
  maxWarnings: number
}

/**
 * Host dispatcher: starts one tool call. It returns a guest promise that resolves with a
 * `CallAnswer` as JSON text (never rejects), so the prelude alone decides what the guest sees.
 */
export type HostDispatch = (
  serverJson: string,
  toolJson: string,
  argsJson: string,
) => Promise<string>

/**
 * Host log sink. Given a line (as JSON string text), it stores it and answers whether more lines
 * are welcome; once it said no, the prelude sends only the UTF-8 byte count of each further line
 * (to count drops without copying big strings out of the guest).
 */
export type HostLog = (lineOrDroppedBytes: string | number) => boolean

/**
 * Called by the prelude, once, in the promise job that settles the model's body: `0` with the
 * value it fulfilled with, `1` with the reason it rejected with. The host closes the dispatcher
 * and reads the value through {@link PreludeApi.serialize} / {@link PreludeApi.describe}.
 */
export type HostSettled = (rejected: 0 | 1, value: unknown) => void

/** The answer to one tool call, as JSON text handed to the guest. */
export type CallAnswer =
  { ok: true; value: WireJson } | { ok: false; code: string; message: string }

/** A finding about the result that did not stop it: the host keeps the codes it knows. */
export interface WireWarning {
  code: string
  message: string
  /** Where in the result, as `result.items[2].when`. */
  path?: string
}

/**
 * What {@link PreludeApi.serialize} returns, as JSON text: the result's own JSON text, or why it
 * cannot be one. `json` is absent for `undefined` (no result).
 */
export type SerializedResult =
  | { ok: true; json?: string; warnings: WireWarning[] }
  | { ok: false; code: string; message: string; warnings: WireWarning[] }

/** What {@link PreludeApi.describe} returns, as JSON text. `stack` is the raw guest stack text. */
export interface DescribedError {
  code: string
  message: string
  stack?: string
}

/** What `install` hands back to the host. */
export interface PreludeApi {
  /** Calls `body` and reports its settlement through the host's `settled`. */
  run(body: () => Promise<unknown>): void
  /**
   * The JSON text of a value, read without running guest code: no getters, Proxy traps or
   * `toJSON` methods are invoked (see the prelude for what each becomes).
   */
  serialize(value: unknown, boundsJson: string): string
  /** A thrown value, read without running guest code. */
  describe(thrown: unknown): string
}

/** Signature of the prelude's entry point; the host calls it once per execution. */
export type PreludeInstall = (
  dispatch: HostDispatch,
  log: HostLog,
  settled: HostSettled,
  manifestJson: string,
  optionsJson: string,
) => PreludeApi

/** File name the model's code is evaluated under: positions in stacks refer to it. */
export type ModelFileName = 'model.ts'
