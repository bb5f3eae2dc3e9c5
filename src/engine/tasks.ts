/**
 * Tasks for long executions (MCP 2026-07-28, the `io.modelcontextprotocol/tasks` extension):
 * `execute_code` answers at once with a task; the execution runs in the background on the
 * replica that took it; any replica answers the task's status, result, cancellation and approval
 * answers from the shared store.
 *
 * What the store holds, per task, all under the creating principal's key (so another caller's
 * lookup finds nothing, exactly as for an id never issued):
 * - the record (`task:<principal>:<id>`, JSON, for the task's TTL): status and result, and what
 *   a resumption needs (the code, the approval token). Every change is a compare-and-set from
 *   the value the writer read, so of two replicas deciding one task (the runner finishing, a
 *   poller declaring it dead, a cancel) exactly one wins, and a terminal status stays.
 * - a hold in the principal's hold set (`tasks:<principal>`): the runner renews it every third
 *   of `gateway.tasks.leaseMs`. It is the lease (a working task whose hold ran out lost its
 *   replica: `failed` at the next poll) and the per-principal count
 *   (`gateway.tasks.maxPerPrincipal` holds at once).
 * - a cancel flag (`task:<principal>:<id>:cancel`), also announced on the `tasks` channel. The
 *   runner hears the announcement at once; a missed one (a Redis reconnect) is caught by the
 *   flag at the next renewal.
 *
 * @module
 */
import type { Context } from '@opentelemetry/api'
import { randomBytes } from 'node:crypto'
import { isSluiceError } from '../errors.js'
import type { SharedStore } from '../store/index.js'
import type { ExecutionError, ExecutionResult, Principal, TaskStatus, TaskView } from '../types.js'
import type { ExecuteOptions } from './engine.js'

/** The settings of the current config (`gateway.tasks` and the approval wait). */
export interface TaskSettings {
  ttlMs: number
  pollIntervalMs: number
  leaseMs: number
  maxPerPrincipal: number
  approvalTimeoutMs: number
}

/** What a task's execution keeps of the request that started (or resumed) it. */
export interface TaskRunOptions {
  /** The caller's bearer token, for token-exchange grants. */
  inboundToken?: string
  /**
   * The client declared it can answer an elicitation: an approval makes the task
   * `input_required`. Without it, an approval is refused (`APPROVAL_DENIED`, "cannot ask").
   */
  canAsk?: boolean
  /** The trace context the task's execution span is a child of (ExecuteOptions.traceParent). */
  traceParent?: Context
}

export interface TaskDeps {
  store: SharedStore
  settings(): TaskSettings
  /** Whose tasks these are: the same key for the same caller on every replica. */
  ownerKey(principal: Principal): string
  /** One execution (the engine's `execute`); never throws for what the code did. */
  run(principal: Principal, code: string, options: ExecuteOptions): Promise<ExecutionResult>
  log?: (
    level: 'info' | 'warn' | 'error',
    message: string,
    fields?: Record<string, unknown>,
  ) => void
}

/** The stored record: what a caller sees, and what only a resumption needs. */
interface TaskRecord extends TaskView {
  v: 1
  code: string
  /** The approval token of the `input` question, for the durable resumption. */
  token?: string
  /** The calls made before the approval, for the result of an approval nobody answered. */
  callsBefore?: ExecutionResult['calls']
  /** Runs so far (the first, and one per answered approval); names input keys. */
  round: number
}

/** Where one principal's tasks live in the store. */
interface Owner {
  holds: string
  record(taskId: string): string
  cancelFlag(taskId: string): string
}

/** A task of this process's, running. */
interface Running {
  controller: AbortController
  cancelled: boolean
}

const ID = /^[A-Za-z0-9_-]{24}$/
const CHANNEL = 'tasks'
const TERMINAL: ReadonlySet<TaskStatus> = new Set(['completed', 'failed', 'cancelled'])
/** Tries of a write that the store refused (an outage), before the task is left to its lease. */
const WRITE_TRIES = 3
const WRITE_RETRY_MS = 200
/** A hold's margin past the approval deadline, so the count does not drop before the record. */
const HOLD_MARGIN_MS = 1_000

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

export type TaskStart = { ok: true; task: TaskView } | { ok: false; error: ExecutionError }

export class Tasks {
  readonly #deps: TaskDeps
  /** Tasks this process runs, by record key. */
  readonly #running = new Map<string, Running>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #subscribed: Promise<() => Promise<void>> | undefined

  constructor(deps: TaskDeps) {
    this.#deps = deps
  }

  /**
   * Creates a task for `code` and starts it in the background. Resolves once the record is in
   * the store (a `tasks/get` on any replica finds it). Refused with `TASK_LIMIT` when the caller
   * has `maxPerPrincipal` tasks working or waiting, `OVERLOADED` when the store cannot keep it.
   */
  async start(
    principal: Principal,
    code: string,
    options: TaskRunOptions = {},
  ): Promise<TaskStart> {
    const settings = this.#deps.settings()
    const owner = this.#owner(principal)
    const taskId = randomBytes(18).toString('base64url')
    try {
      await this.#subscribe()
      const hold = await this.#deps.store.hold(
        owner.holds,
        taskId,
        settings.maxPerPrincipal,
        settings.leaseMs,
      )
      if (!hold.held) {
        return {
          ok: false,
          error: {
            code: 'TASK_LIMIT',
            message: `this caller has ${hold.count} tasks working or waiting for input, the most gateway.tasks.maxPerPrincipal (${settings.maxPerPrincipal}) allows; wait for one to end, or cancel one with tasks/cancel`,
          },
        }
      }
      const now = Date.now()
      const record: TaskRecord = {
        v: 1,
        taskId,
        status: 'working',
        statusMessage: 'the execution is running',
        createdAt: now,
        lastUpdatedAt: now,
        ttlMs: settings.ttlMs,
        pollIntervalMs: settings.pollIntervalMs,
        code,
        round: 1,
      }
      const json = JSON.stringify(record)
      try {
        await this.#deps.store.put(owner.record(taskId), json, settings.ttlMs)
      } catch (cause) {
        await this.#deps.store.release(owner.holds, taskId).catch(() => undefined)
        throw cause
      }
      this.#drive(principal, owner, record, json, options)
      return { ok: true, task: view(record) }
    } catch (cause) {
      return {
        ok: false,
        error: {
          code: 'OVERLOADED',
          message: `the task could not be created: ${storeReason(cause)}; nothing ran, send the call again`,
          retryAfterMs: WRITE_RETRY_MS * 5,
        },
      }
    }
  }

  /**
   * The task as its caller may see it now; undefined when `principal` has no task `taskId`
   * (never issued, another caller's, or expired). Settles what no runner will: a working task
   * whose lease ran out is `failed`, an approval nobody answered in time `completed` with
   * `APPROVAL_DENIED`.
   */
  async get(principal: Principal, taskId: string): Promise<TaskView | undefined> {
    if (!ID.test(taskId)) return undefined
    const owner = this.#owner(principal)
    const key = owner.record(taskId)
    for (let attempt = 0; attempt < 3; attempt++) {
      const json = await this.#deps.store.get(key)
      const record = json === undefined ? undefined : parse(json)
      if (record === undefined || json === undefined) return undefined
      const settled = await this.#settle(owner, record)
      if (settled === undefined) return view(record)
      if (await this.#write(key, json, settled)) {
        if (TERMINAL.has(settled.status))
          await this.#deps.store.release(owner.holds, taskId).catch(() => undefined)
        return view(settled)
      }
      // Someone else changed it meanwhile: read it again.
    }
    const json = await this.#deps.store.get(key)
    const record = json === undefined ? undefined : parse(json)
    return record === undefined ? undefined : view(record)
  }

  /**
   * Asks the task to stop; false when there is no such task. A running execution is aborted on
   * the replica that runs it (its inner calls are cancelled upstream) and ends `cancelled`; a
   * task waiting for an approval is `cancelled` at once; a finished task stays as it is.
   */
  async cancel(principal: Principal, taskId: string): Promise<boolean> {
    if (!ID.test(taskId)) return false
    const owner = this.#owner(principal)
    const key = owner.record(taskId)
    for (let attempt = 0; attempt < 3; attempt++) {
      const json = await this.#deps.store.get(key)
      const record = json === undefined ? undefined : parse(json)
      if (record === undefined || json === undefined) return false
      if (TERMINAL.has(record.status)) return true
      const running = this.#running.get(key)
      if (running !== undefined) {
        stop(running)
        return true
      }
      if (record.status === 'working' && (await this.#deps.store.isHeld(owner.holds, taskId))) {
        const remaining = remainingMs(record)
        await this.#deps.store.put(owner.cancelFlag(taskId), '1', remaining)
        await this.#deps.store.publish(CHANNEL, JSON.stringify({ cancel: key }))
        return true
      }
      // Waiting for an approval, or its runner is gone: nobody else will end it.
      const cancelled = finished(record, {
        status: 'cancelled',
        statusMessage:
          record.status === 'input_required'
            ? 'cancelled by tasks/cancel while it waited for an approval'
            : 'cancelled by tasks/cancel; the replica running it had stopped',
      })
      if (await this.#write(key, json, cancelled)) {
        await this.#deps.store.release(owner.holds, taskId).catch(() => undefined)
        return true
      }
    }
    return true
  }

  /**
   * The client's answers to a task waiting for input (`tasks/update`), by input key: the
   * answer to the pending approval resumes the execution on this replica. Answers to any other
   * key are ignored, as the spec says. False when there is no such task.
   */
  async answer(
    principal: Principal,
    taskId: string,
    answers: Readonly<Record<string, 'accept' | 'decline'>>,
    options: TaskRunOptions = {},
  ): Promise<boolean> {
    if (!ID.test(taskId)) return false
    const owner = this.#owner(principal)
    const key = owner.record(taskId)
    const json = await this.#deps.store.get(key)
    const record = json === undefined ? undefined : parse(json)
    if (record === undefined || json === undefined) return false
    const input = record.input
    const answer = input === undefined ? undefined : answers[input.key]
    if (record.status !== 'input_required' || answer === undefined || record.token === undefined)
      return true
    if (input!.expiresAt <= Date.now()) return true
    const { input: _input, callsBefore: _calls, ...rest } = record
    const resumed: TaskRecord = {
      ...rest,
      status: 'working',
      statusMessage: `the execution resumed after the approval was ${answer === 'accept' ? 'given' : 'refused'}`,
      lastUpdatedAt: Date.now(),
      round: record.round + 1,
    }
    const resumedJson = JSON.stringify(resumed)
    // A second answer (or a cancel) that came first wins; this one is then ignored.
    if (!(await this.#deps.store.swap(key, json, resumedJson, remainingMs(record)))) return true
    const settings = this.#deps.settings()
    await this.#deps.store
      .hold(owner.holds, taskId, Number.MAX_SAFE_INTEGER, settings.leaseMs)
      .catch(() => undefined)
    await this.#subscribe()
    this.#drive(principal, owner, resumed, resumedJson, options, {
      token: record.token,
      answer,
    })
    return true
  }

  /** Stops renewing leases and listening; running executions end with the engine. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer)
    this.#timers.clear()
    const unsubscribe = await this.#subscribed?.catch(() => undefined)
    this.#subscribed = undefined
    await unsubscribe?.()
  }

  #owner(principal: Principal): Owner {
    const who = this.#deps.ownerKey(principal)
    return {
      holds: `tasks:${who}`,
      record: (taskId: string) => `task:${who}:${taskId}`,
      cancelFlag: (taskId: string) => `task:${who}:${taskId}:cancel`,
    }
  }

  #subscribe(): Promise<() => Promise<void>> {
    this.#subscribed ??= this.#deps.store
      .subscribe(CHANNEL, (message) => {
        const key = parseCancel(message)
        const running = key === undefined ? undefined : this.#running.get(key)
        if (running !== undefined) stop(running)
      })
      .catch((cause: unknown) => {
        this.#subscribed = undefined
        throw cause
      })
    return this.#subscribed
  }

  /** What a poller decides about a task no runner will change; undefined when nothing. */
  async #settle(owner: Owner, record: TaskRecord): Promise<TaskRecord | undefined> {
    if (record.status === 'input_required' && record.input !== undefined) {
      if (record.input.expiresAt > Date.now()) return undefined
      const { approvalTimeoutMs } = this.#deps.settings()
      return finished(record, {
        status: 'completed',
        statusMessage: 'the approval expired',
        result: {
          ok: false,
          result: undefined,
          logs: [],
          calls: record.callsBefore ?? [],
          error: {
            code: 'APPROVAL_DENIED',
            message: `no human answered the approval of ${record.input.question.tool} within gateway.approvalTimeoutMs (${approvalTimeoutMs} ms); the calls before it ran, nothing after it. Run the script again to ask again`,
          },
        },
      })
    }
    if (record.status !== 'working') return undefined
    if (this.#running.has(owner.record(record.taskId))) return undefined
    if (await this.#deps.store.isHeld(owner.holds, record.taskId)) return undefined
    const { leaseMs } = this.#deps.settings()
    return finished(record, {
      status: 'failed',
      failure: `the replica running this task stopped renewing its lease (gateway.tasks.leaseMs: ${leaseMs} ms), so it probably stopped; whether the execution's calls ran is unknown. Check before running the code again`,
    })
  }

  /** Runs (or resumes) the task's execution here, and records how it ended. */
  #drive(
    principal: Principal,
    owner: Owner,
    record: TaskRecord,
    json: string,
    options: TaskRunOptions,
    resume?: { token: string; answer: 'accept' | 'decline' },
  ): void {
    const key = owner.record(record.taskId)
    const running: Running = { controller: new AbortController(), cancelled: false }
    this.#running.set(key, running)
    const { leaseMs } = this.#deps.settings()
    const renew = setInterval(() => void this.#renew(owner, record.taskId, running), leaseMs / 3)
    renew.unref()
    this.#timers.add(renew)
    const log = this.#deps.log
    void (async () => {
      let next: TaskRecord
      try {
        const result = await this.#deps.run(principal, record.code, {
          ...(options.inboundToken === undefined ? {} : { inboundToken: options.inboundToken }),
          ...(options.traceParent === undefined ? {} : { traceParent: options.traceParent }),
          signal: running.controller.signal,
          ...(resume !== undefined || options.canAsk === true
            ? { durable: resume === undefined ? {} : { resume } }
            : { approve: async () => 'unsupported' as const }),
        })
        next = this.#outcome(record, result, running)
      } catch (cause) {
        log?.('error', 'a task execution failed inside the engine', {
          taskId: record.taskId,
          error: cause instanceof Error ? cause.message : String(cause),
        })
        next = finished(record, {
          status: 'failed',
          failure: 'internal error in the gateway; the execution did not complete',
        })
      } finally {
        clearInterval(renew)
        this.#timers.delete(renew)
      }
      try {
        const written = await this.#finish(owner, key, json, next)
        if (!written)
          log?.('warn', 'a task ended after another replica had decided it', {
            taskId: record.taskId,
            status: next.status,
          })
      } finally {
        this.#running.delete(key)
      }
    })()
  }

  /** How one run ended, as the next record. */
  #outcome(record: TaskRecord, result: ExecutionResult, running: Running): TaskRecord {
    // A run that finished before the abort took effect keeps its result (the spec allows it).
    if (running.cancelled && !result.ok) {
      const { suspended: _suspended, ...ended } = result
      return finished(record, {
        status: 'cancelled',
        statusMessage: 'cancelled by tasks/cancel',
        result: ended,
      })
    }
    const suspended = result.suspended
    if (suspended !== undefined) {
      const { result: _r, failure: _f, ...rest } = record
      return {
        ...rest,
        status: 'input_required',
        statusMessage: `waiting for a human to approve ${suspended.question.tool}`,
        lastUpdatedAt: Date.now(),
        input: {
          key: `approval-${record.round}`,
          question: suspended.question,
          expiresAt: suspended.expiresAt,
        },
        token: suspended.token,
        callsBefore: result.calls,
      }
    }
    return finished(record, {
      status: 'completed',
      statusMessage: result.ok
        ? 'the execution completed'
        : `the execution failed: ${result.error?.code ?? 'INTERNAL'}`,
      result,
    })
  }

  /**
   * Writes how the run ended, from the record it started with; false when another replica
   * changed it first. A result the store cannot hold leaves a `failed` task that says so.
   */
  async #finish(owner: Owner, key: string, json: string, next: TaskRecord): Promise<boolean> {
    let reason = ''
    for (let attempt = 0; attempt < WRITE_TRIES; attempt++) {
      try {
        const written = await this.#write(key, json, next)
        if (written) await this.#afterWrite(owner, next)
        return written
      } catch (cause) {
        reason = storeReason(cause)
        if (attempt + 1 < WRITE_TRIES) await delay(WRITE_RETRY_MS * (attempt + 1))
      }
    }
    const failed = finished(next, {
      status: 'failed',
      failure: `the execution ended (${next.status}) but the store could not keep its result: ${reason}`,
    })
    try {
      const written = await this.#write(key, json, failed)
      if (written) await this.#afterWrite(owner, failed)
      return written
    } catch {
      // The store is gone: the lease runs out, and the next poll says so.
      return false
    }
  }

  async #afterWrite(owner: Owner, written: TaskRecord): Promise<void> {
    if (written.status === 'input_required' && written.input !== undefined) {
      // Counted until the approval expires; nobody renews it meanwhile.
      const holdMs = written.input.expiresAt - Date.now() + HOLD_MARGIN_MS
      await this.#deps.store
        .hold(owner.holds, written.taskId, Number.MAX_SAFE_INTEGER, holdMs)
        .catch(() => undefined)
      return
    }
    await this.#deps.store.release(owner.holds, written.taskId).catch(() => undefined)
  }

  /** A compare-and-set of the record; false when it changed, or when its TTL ran out. */
  async #write(key: string, expected: string, next: TaskRecord): Promise<boolean> {
    const remaining = remainingMs(next)
    if (remaining <= 0) return false
    return this.#deps.store.swap(key, expected, JSON.stringify(next), remaining)
  }

  /** The runner's heartbeat: renews the lease and looks for a cancel it did not hear. */
  async #renew(owner: Owner, taskId: string, running: Running): Promise<void> {
    const { leaseMs } = this.#deps.settings()
    try {
      await this.#deps.store.hold(owner.holds, taskId, Number.MAX_SAFE_INTEGER, leaseMs)
      if ((await this.#deps.store.get(owner.cancelFlag(taskId))) !== undefined) stop(running)
    } catch (cause) {
      this.#deps.log?.('warn', 'a task lease could not be renewed', {
        taskId,
        error: storeReason(cause),
      })
    }
  }
}

function stop(running: Running): void {
  running.cancelled = true
  running.controller.abort()
}

/** A terminal (or settled) record: the result or failure replaces the question. */
function finished(
  record: TaskRecord,
  change: Pick<TaskRecord, 'status'> &
    Partial<Pick<TaskRecord, 'statusMessage' | 'result' | 'failure'>>,
): TaskRecord {
  const { input: _i, token: _t, callsBefore: _c, result: _r, failure: _f, ...rest } = record
  return {
    ...rest,
    ...change,
    statusMessage: change.statusMessage ?? change.failure ?? record.statusMessage,
    lastUpdatedAt: Date.now(),
  }
}

/** What a caller sees: the record without the code and the approval token. */
function view(record: TaskRecord): TaskView {
  const { v: _v, code: _code, token: _token, callsBefore: _calls, round: _round, ...seen } = record
  return seen
}

function parse(json: string): TaskRecord | undefined {
  try {
    const record = JSON.parse(json) as TaskRecord
    return record?.v === 1 && typeof record.taskId === 'string' ? record : undefined
  } catch {
    return undefined
  }
}

function parseCancel(message: string): string | undefined {
  try {
    const parsed = JSON.parse(message) as { cancel?: unknown }
    return typeof parsed?.cancel === 'string' ? parsed.cancel : undefined
  } catch {
    return undefined
  }
}

/** What is left of a task's TTL, counted from its creation. */
function remainingMs(record: TaskRecord): number {
  return record.createdAt + record.ttlMs - Date.now()
}

function storeReason(cause: unknown): string {
  return isSluiceError(cause) ? cause.message : 'the shared store failed'
}
