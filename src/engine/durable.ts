/**
 * Durable approvals for stateless clients (MCP 2026-07-28): an `approve` decision does not keep
 * the execution waiting in this process. The run stops instead, its completed inner calls are
 * kept as a journal in the shared store, and the request ends with the question for the human.
 * When the client answers, any replica runs the same code again: every call the journal holds
 * is answered from it (the upstream is not called twice), the approved call runs (or is
 * refused), and the run goes on live.
 *
 * The replay is deterministic because the guest has no other input: the same code, the same
 * results in the same call order, the same `Math.random` seed. A script whose calls still differ
 * (a clock in the arguments, logic that depends on which parallel call finishes first) is
 * stopped with `REPLAY_DIVERGED` rather than fed a result that belongs to another call.
 *
 * Data labels survive the stop: each journal entry keeps the labels its call added to the
 * execution, and the replay adds them again in call order, so a resumed run still denies an
 * `egress` tool after a `confidential` read that happened before the approval. The calls the
 * journal answers itself never reach the dispatcher, so the journal also takes and releases
 * their turns in the execution's {@link LabelLedger}.
 *
 * @module
 */
import { randomBytes, randomFillSync } from 'node:crypto'
import { hashArgs } from '../audit/index.js'
import { isSluiceError } from '../errors.js'
import type { RandomSeed, SandboxCall, SandboxCallOutcome } from '../sandbox/index.js'
import type { SharedStore } from '../store/index.js'
import type { CallRecord, ExecutionError, SuspendedExecution } from '../types.js'
import type { ApprovalAnswer, ApprovalRequest } from './dispatch.js'
import type { LabelLedger } from './labels.js'

/** What identifies one inner call across runs. */
interface CallKey {
  server: string
  tool: string
  argsHash: string
}

/** One completed inner call, as the replay feeds it back. */
export interface JournalEntry extends CallKey {
  index: number
  outcome: SandboxCallOutcome
  record: CallRecord
  /** The data labels the call added to the execution (none when it was refused). */
  labels?: string[]
}

/** An execution stopped at an approval, as the store keeps it (JSON). */
export interface SuspendedRun {
  v: 1
  executionId: string
  codeHash: string
  seed: RandomSeed
  /** Epoch milliseconds after which the approval is expired. */
  expiresAt: number
  /** The call that waits for the human. */
  pending: CallKey & { index: number; request: Omit<ApprovalRequest, 'index'> }
  journal: JournalEntry[]
  /** Policy budget counts of the calls in the journal. */
  budget: [string, number][]
}

/** The human's answer the client brought back, and the run it answers. */
export interface Resumption {
  run: SuspendedRun
  answer: 'accept' | 'decline'
}

/** Why a replay stopped: the script did not make the calls it made before. */
export interface Divergence {
  index: number
  message: string
}

const keyOf = (call: SandboxCall): CallKey => ({
  server: call.server,
  tool: call.tool,
  argsHash: hashArgs(call.args),
})

const sameCall = (a: CallKey, b: CallKey) =>
  a.server === b.server && a.tool === b.tool && a.argsHash === b.argsHash

/**
 * The opaque `requestState` a client echoes: the expiry (base 36, so an expired answer gets its
 * own message) and 144 random bits. Only the random part makes it valid: the store is keyed by
 * the whole string, per principal.
 */
export function newApprovalToken(expiresAt: number): string {
  return `${expiresAt.toString(36)}.${randomBytes(18).toString('base64url')}`
}

/** The expiry a token names, or undefined when it is not one of ours. */
export function tokenExpiry(token: string): number | undefined {
  const match = /^([0-9a-z]{1,11})\.[A-Za-z0-9_-]{24}$/.exec(token)
  return match === null ? undefined : Number.parseInt(match[1]!, 36)
}

/** Parses a stored run; undefined when it is not one this version wrote. */
export function parseRun(json: string): SuspendedRun | undefined {
  try {
    const run = JSON.parse(json) as SuspendedRun
    return run?.v === 1 && Array.isArray(run.journal) ? run : undefined
  } catch {
    return undefined
  }
}

/**
 * One run's journal: wraps every inner call (replay or live) and is the approval handler. The
 * engine aborts the sandbox when {@link onStop} fires and then reads {@link suspension} or
 * {@link divergence}.
 */
export class Journal {
  readonly #replay: Map<number, JournalEntry>
  readonly #entries: Map<number, JournalEntry>
  readonly #resume: Resumption | undefined
  readonly #ledger: LabelLedger
  readonly #onStop: () => void
  /** The approval this run stops at, once one was asked. */
  #pending: SuspendedRun['pending'] | undefined
  /** Calls whose outcome must not reach the guest (the approvals that stopped the run). */
  readonly #held = new Set<number>()
  /** What each live call is, by index, for the approval handler (which sees no arguments). */
  readonly #keys = new Map<number, CallKey>()
  #inFlight = 0
  #divergence: Divergence | undefined
  #stopped = false

  constructor(options: { resume?: Resumption; ledger: LabelLedger; onStop: () => void }) {
    this.#resume = options.resume
    this.#ledger = options.ledger
    this.#onStop = options.onStop
    const prior = options.resume?.run.journal ?? []
    this.#replay = new Map(prior.map((e) => [e.index, e]))
    this.#entries = new Map(this.#replay)
  }

  /** The approval the run stopped at; undefined while it runs or when it ended otherwise. */
  get suspension(): SuspendedRun['pending'] | undefined {
    return this.#divergence === undefined ? this.#pending : undefined
  }

  get divergence(): Divergence | undefined {
    return this.#divergence
  }

  /** The completed calls, in call order, for the next suspended run. */
  entries(): JournalEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.index - b.index)
  }

  /**
   * One inner call: from the journal when it holds it, else `live` (the dispatcher, recording
   * into `calls`). After the run stopped, no outcome reaches the guest: the sandbox is about
   * to be aborted, and what it would do next belongs to the resumed run.
   */
  async call(
    call: SandboxCall,
    signal: AbortSignal,
    calls: CallRecord[],
    live: (own: CallRecord[]) => Promise<SandboxCallOutcome>,
  ): Promise<SandboxCallOutcome> {
    if (this.#pending !== undefined || this.#divergence !== undefined) {
      this.#ledger.pass(call.index)
      return held(signal)
    }
    const key = keyOf(call)
    const prior = this.#replay.get(call.index)
    if (prior !== undefined) {
      if (!sameCall(prior, key)) return this.#diverge(call, prior, signal)
      // In turn, like a live call: a later call must not see these labels early, nor an
      // earlier one late.
      try {
        await this.#ledger.turn(call.index, signal)
      } catch {
        // The execution ended while this call waited its turn.
        this.#ledger.pass(call.index)
        return held(signal)
      }
      this.#ledger.authorise(call.index, prior.labels ?? [])
      calls.push(prior.record)
      return prior.outcome
    }
    const waiting = this.#resume?.run.pending
    if (waiting !== undefined && waiting.index === call.index && !sameCall(waiting, key))
      return this.#diverge(call, waiting, signal)
    this.#keys.set(call.index, key)
    this.#inFlight += 1
    try {
      const own: CallRecord[] = []
      const outcome = await live(own)
      if (this.#held.has(call.index)) return held(signal)
      calls.push(...own)
      const record = own[0]
      const labels = [...this.#ledger.labelsOf(call.index)]
      if (record !== undefined)
        this.#entries.set(call.index, {
          ...key,
          index: call.index,
          outcome,
          record,
          ...(labels.length === 0 ? {} : { labels }),
        })
      return this.#pending === undefined ? outcome : held(signal)
    } finally {
      this.#inFlight -= 1
      this.#maybeStop()
    }
  }

  /**
   * The approval handler of this run: the answer the client brought for the call that asked,
   * else the run stops here (`suspended`), and any other approval asked meanwhile waits for the
   * next round.
   */
  readonly approve = async (request: ApprovalRequest): Promise<ApprovalAnswer> => {
    const waiting = this.#resume?.run.pending
    if (waiting !== undefined && waiting.index === request.index) return this.#resume!.answer
    this.#held.add(request.index)
    const key = this.#keys.get(request.index)
    if (this.#pending === undefined && key !== undefined) {
      const { index: _index, ...question } = request
      this.#pending = { ...key, index: request.index, request: question }
    }
    return 'suspended'
  }

  #diverge(call: SandboxCall, before: CallKey, signal: AbortSignal): Promise<SandboxCallOutcome> {
    this.#ledger.pass(call.index)
    const now = `${call.server}.${call.tool}`
    const then = `${before.server}.${before.tool}`
    const what =
      now === then
        ? `${now} with other arguments than before the approval`
        : `${now}, where the run before the approval called ${then}`
    this.#divergence ??= {
      index: call.index,
      message: `the script did not repeat its calls when it resumed after the approval: call ${call.index + 1} was ${what}. A resumed execution replays the calls made before the approval; keep those calls independent of the clock and of which parallel call finishes first`,
    }
    this.#maybeStop()
    return held(signal)
  }

  #maybeStop(): void {
    if (this.#stopped || this.#inFlight > 0) return
    if (this.#pending === undefined && this.#divergence === undefined) return
    this.#stopped = true
    this.#onStop()
  }
}

/** An outcome that only comes when the execution ends (the guest never sees it). */
function held(signal: AbortSignal): Promise<SandboxCallOutcome> {
  const ended: SandboxCallOutcome = {
    ok: false,
    code: 'CANCELLED',
    message: 'the execution stopped for an approval',
  }
  if (signal.aborted) return Promise.resolve(ended)
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(ended), { once: true }),
  )
}

/** Where a suspended run is kept: per principal, so another caller's answer finds nothing. */
const storeKey = (principalKey: string, token: string) =>
  `approval:${hashArgs(principalKey).slice('sha256:'.length, 'sha256:'.length + 32)}:${token}`

/** When a store fault allows a retry. */
const STORE_RETRY_MS = 1_000

type Failed = { ok: false; error: ExecutionError }

/**
 * Takes the run a client's answer resumes, once: a second answer with the same token finds
 * nothing. Every failure is an `APPROVAL_DENIED` that says what to do, except a store outage
 * (`OVERLOADED`, retry).
 */
/** How the denials of {@link takeRun} name what asked: a script, or one direct-mode call. */
export interface ResumeWording {
  /** What the client does to be asked again. */
  again: string
  /** What else ran: said of an expired approval. */
  before: string
  /** Why an answer for something else does not resume this. */
  differs: string
}

export const SCRIPT_WORDING: ResumeWording = {
  again: 'run the script again to ask again',
  before: 'The calls before it ran, nothing after it; ',
  differs:
    'the code differs from the code that asked for this approval: an answer resumes only the execution that asked',
}

export const DIRECT_WORDING: ResumeWording = {
  again: 'make the call again to ask again',
  before: 'The call did not run; ',
  differs:
    'the tool or its arguments differ from the call that asked for this approval: an answer resumes only that call',
}

export const PASSTHROUGH_WORDING: ResumeWording = {
  again: 'send the request again to ask again',
  before: 'Nothing was read; ',
  differs:
    'the prompt or resource, or its arguments, differ from the request that asked for this approval: an answer resumes only that request',
}

export async function takeRun(
  store: SharedStore,
  principalKey: string,
  token: string,
  codeHash: string,
  approvalTimeoutMs: number,
  wording: ResumeWording = SCRIPT_WORDING,
): Promise<{ ok: true; run: SuspendedRun } | Failed> {
  const again = wording.again
  const Again = again[0]!.toUpperCase() + again.slice(1)
  const denied = (message: string): Failed => ({
    ok: false,
    error: { code: 'APPROVAL_DENIED', message },
  })
  const expiresAt = tokenExpiry(token)
  if (expiresAt === undefined)
    return denied(
      `the answer names no approval this gateway asked for (its requestState is not one sluice issued); ${again}`,
    )
  let json: string | undefined
  try {
    json = await store.take(storeKey(principalKey, token))
  } catch (cause) {
    return {
      ok: false,
      error: {
        code: 'OVERLOADED',
        message: `the approval cannot be resumed now: ${isSluiceError(cause) ? cause.message : 'the shared store failed'}; send the answer again`,
        retryAfterMs: STORE_RETRY_MS,
      },
    }
  }
  const run = json === undefined ? undefined : parseRun(json)
  const now = Date.now()
  if (run === undefined || run.expiresAt <= now) {
    if (expiresAt <= now)
      return denied(
        `the approval expired ${Math.ceil((now - expiresAt) / 1000)} s ago: no human answered within gateway.approvalTimeoutMs (${approvalTimeoutMs} ms). ${wording.before}${again}`,
      )
    return denied(
      `the approval is no longer pending: it was answered already (an answer is used once), or the store lost it (the in-process store does not survive a restart; store.redis does). ${Again}`,
    )
  }
  if (run.codeHash !== codeHash) return denied(`${wording.differs}. ${Again}`)
  return { ok: true, run }
}

/** Keeps a stopped run for `ttlMs` and returns the token the client echoes back. */
export async function saveRun(
  store: SharedStore,
  principalKey: string,
  run: SuspendedRun,
  limits: { ttlMs: number; maxBytes: number },
): Promise<{ ok: true; token: string } | Failed> {
  const json = JSON.stringify(run)
  const bytes = Buffer.byteLength(json)
  const tool = run.pending.request.tool
  if (bytes > limits.maxBytes) {
    return {
      ok: false,
      error: {
        code: 'APPROVAL_DENIED',
        message: `${tool} needs approval, but the ${run.journal.length} calls before it returned ${bytes} bytes to keep while the human decides, over gateway.approvalJournalMaxBytes (${limits.maxBytes}); the approval was not asked. Fetch less before the call that needs approval, or make it in its own execution`,
      },
    }
  }
  const token = newApprovalToken(run.expiresAt)
  try {
    await store.put(storeKey(principalKey, token), json, limits.ttlMs)
  } catch (cause) {
    return {
      ok: false,
      error: {
        code: 'OVERLOADED',
        message: `${tool} needs approval, but the execution could not be kept while the human decides: ${isSluiceError(cause) ? cause.message : 'the shared store failed'}. The calls before it ran and run again on a retry`,
        retryAfterMs: STORE_RETRY_MS,
      },
    }
  }
  return { ok: true, token }
}

/**
 * Keeps one request stopped at its approval with nothing run before it, so no journal: a
 * direct-mode call, or a passthrough prompt or resource read. `hash` names the request, both as
 * the code {@link takeRun} checks an answer against and as the pending call's arguments.
 */
export async function saveSingle(
  store: SharedStore,
  principalKey: string,
  executionId: string,
  hash: string,
  call: {
    server: string
    tool: string
    index: number
    request: SuspendedRun['pending']['request']
  },
  gateway: { approvalTimeoutMs: number; approvalJournalMaxBytes: number },
): Promise<{ ok: true; suspended: SuspendedExecution } | Failed> {
  const { approvalTimeoutMs, approvalJournalMaxBytes } = gateway
  const expiresAt = Date.now() + approvalTimeoutMs
  const saved = await saveRun(
    store,
    principalKey,
    {
      v: 1,
      executionId,
      codeHash: hash,
      seed: newSeed(),
      expiresAt,
      pending: {
        server: call.server,
        tool: call.tool,
        argsHash: hash,
        index: call.index,
        request: call.request,
      },
      journal: [],
      budget: [],
    },
    { ttlMs: approvalTimeoutMs, maxBytes: approvalJournalMaxBytes },
  )
  if (!saved.ok) return saved
  return { ok: true, suspended: { token: saved.token, question: call.request, expiresAt } }
}

/** A fresh `Math.random` seed for a run that may be replayed. */
export function newSeed(): RandomSeed {
  const words = new Uint32Array(4)
  randomFillSync(words)
  return [words[0]!, words[1]!, words[2]!, words[3]!]
}
