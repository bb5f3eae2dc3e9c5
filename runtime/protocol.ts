/**
 * The wire between the guest prelude (runtime/prelude.ts, inside QuickJS) and the host driver
 * (src/sandbox/, in a worker thread). Only JSON text and these shapes cross it; src/ imports
 * this file with `import type` only, so nothing here may be a runtime value.
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
  /** Enforced by the prelude itself, because it holds the data (the serialised result). */
  maxOutputBytes: number
  /**
   * Seeds `Math.random` (four unsigned 32-bit words, not all zero). Instances are stamped from a
   * template, so QuickJS's own generator would start every execution in the same state.
   */
  randomSeed: [number, number, number, number]
}

/**
 * Host dispatcher: starts one tool call. It returns a guest promise that resolves with a
 * `CallAnswer` as JSON text (never rejects), so the prelude alone decides what the guest sees.
 */
export type HostDispatch = (server: string, tool: string, argsJson: string) => Promise<string>

/**
 * Host log sink. Given a line (as JSON string text), it stores it and answers whether more lines are welcome; once it
 * said no, the prelude sends only the UTF-8 byte count of each further line (to count drops
 * without copying big strings out of the guest).
 */
export type HostLog = (lineOrDroppedBytes: string | number) => boolean

/** The answer to one tool call, as JSON text handed to the guest. */
export type CallAnswer =
  { ok: true; value: WireJson } | { ok: false; code: string; message: string }

/** What the prelude's `run` settles with, as JSON text. `result` is absent for `undefined`. */
export type RunEnvelope =
  | { ok: true; result?: WireJson }
  | { ok: false; code: string; message: string; line?: number; column?: number }

/** What `install` hands back to the host: one function that runs the model's body. */
export interface PreludeApi {
  /** Calls `body`, awaits it, and serialises the outcome with the pristine JSON.stringify. */
  run(body: () => Promise<unknown>): Promise<string>
}

/** Signature of the prelude's entry point; the host calls it once per execution. */
export type PreludeInstall = (
  dispatch: HostDispatch,
  log: HostLog,
  manifestJson: string,
  optionsJson: string,
) => PreludeApi

/** File name the model's code is evaluated under: positions in stacks refer to it. */
export type ModelFileName = 'model.ts'
