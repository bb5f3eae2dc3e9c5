/**
 * Admission control for executions: how many run at once, how many may wait, how often one
 * principal may start one, and in which order waiting executions start.
 *
 * - **Concurrency** (`limits.maxConcurrentExecutions`): past it an execution waits in a queue.
 * - **Queue** (`limits.maxQueuedExecutions`): past it an execution is refused at once with
 *   `OVERLOADED`; one that waits longer than `limits.timeoutMs` for a slot is refused too.
 * - **Rate** (`limits.perPrincipal.executionsPerMinute`): a token bucket per principal, refilled
 *   continuously, held in the shared store (src/store: in-process, or Redis across replicas);
 *   an execution without a token is refused at once with `RATE_LIMITED`. A store that cannot
 *   answer refuses with `OVERLOADED` (retry in 1 s): fail closed, never a hang.
 * - **Fairness**: waiting executions are kept per principal and started round-robin across
 *   principals, so one principal with a thousand queued executions delays another's next one by
 *   at most one execution per principal ahead of it, never by the thousand.
 * - **Drain**: after `drain()`, queued and new executions are refused with `OVERLOADED` while the
 *   running ones finish; `idle()` resolves when none is left.
 *
 * Every refusal carries `retryAfterMs`: for a rate limit, when the next token is due; otherwise
 * an estimate from the recent execution time and the queue ahead, between 100 ms and 30 s.
 *
 * @module
 */
import type { Principal } from '../types.js'
import { isSluiceError } from '../errors.js'
import { MemoryStore, type RateAnswer, type SharedStore } from '../store/index.js'

export interface AdmissionLimits {
  maxConcurrentExecutions: number
  maxQueuedExecutions: number
  /** How long an execution may wait for a slot. */
  queueTimeoutMs: number
  /** Absent: no rate limit. */
  executionsPerMinute?: number
}

export interface Refusal {
  code: 'OVERLOADED' | 'RATE_LIMITED' | 'CANCELLED'
  message: string
  retryAfterMs: number
}

export type Admitted =
  { ok: true; release: () => void; waitedMs: number } | ({ ok: false } & Refusal)

/** What the admission reports to metrics. */
export interface AdmissionEvents {
  onRefused?(code: Refusal['code']): void
  onAdmitted?(waitedMs: number): void
}

interface Waiter {
  key: string
  since: number
  admit: (waitedMs: number) => void
  refuse: (refusal: Refusal) => void
  timer: NodeJS.Timeout
}

const MIN_RETRY_MS = 100
const MAX_RETRY_MS = 30_000
/** Weight of the newest execution in the running estimate of how long one takes. */
const EWMA_WEIGHT = 0.2

export class Admission {
  #limits: AdmissionLimits
  readonly #events: AdmissionEvents
  /** Waiting executions per principal, in arrival order; the map's order is the round-robin. */
  readonly #queues = new Map<string, Waiter[]>()
  readonly #store: SharedStore
  #queued = 0
  #running = 0
  #draining = false
  #typicalMs = 1000
  #idle: Array<() => void> = []

  constructor(
    limits: AdmissionLimits,
    events: AdmissionEvents = {},
    store: SharedStore = new MemoryStore(),
  ) {
    this.#limits = checkLimits(limits)
    this.#events = events
    this.#store = store
  }

  /**
   * New limits (a config reload). Running and waiting executions keep their place; more
   * concurrency starts waiting ones now, less lets running ones finish.
   */
  setLimits(limits: AdmissionLimits): void {
    this.#limits = checkLimits(limits)
    while (this.#queued > 0 && this.#running < this.#limits.maxConcurrentExecutions) {
      const before = this.#running
      this.#next()
      if (this.#running === before) break
    }
  }

  get running(): number {
    return this.#running
  }

  get queued(): number {
    return this.#queued
  }

  get draining(): boolean {
    return this.#draining
  }

  /**
   * Whether an execution of `key` would be refused right now, without taking anything: the
   * HTTP edge answers 503 or 429 before parsing further.
   */
  async check(key: string): Promise<Refusal | undefined> {
    if (this.#draining) return this.#shuttingDown()
    const rate = await this.#rateRefusal(key, false)
    if (rate !== undefined) return rate
    if (
      this.#running >= this.#limits.maxConcurrentExecutions &&
      this.#queued >= this.#limits.maxQueuedExecutions
    ) {
      return this.#full()
    }
    return undefined
  }

  /** Takes a slot for an execution of `key`, waiting in the fair queue if need be. */
  async acquire(key: string, signal?: AbortSignal): Promise<Admitted> {
    const refused = (r: Refusal): Promise<Admitted> => {
      this.#events.onRefused?.(r.code)
      return Promise.resolve({ ok: false, ...r })
    }
    if (this.#draining) return refused(this.#shuttingDown())
    if (signal?.aborted) return refused(cancelled())
    const pending = this.#rateRefusal(key, true)
    const rate = pending instanceof Promise ? await pending : pending
    if (rate !== undefined) return refused(rate)
    if (pending instanceof Promise) {
      // The store took a moment: a drain or a cancel may have come meanwhile.
      if (this.#draining) return refused(this.#shuttingDown())
      if (signal?.aborted) return refused(cancelled())
    }
    if (this.#running < this.#limits.maxConcurrentExecutions)
      return Promise.resolve(this.#admitNow(0))
    if (this.#queued >= this.#limits.maxQueuedExecutions) return refused(this.#full())
    return new Promise<Admitted>((resolve) => {
      const waiter: Waiter = {
        key,
        since: performance.now(),
        admit: (waitedMs) => resolve(this.#admitNow(waitedMs)),
        refuse: (r) => {
          this.#events.onRefused?.(r.code)
          resolve({ ok: false, ...r })
        },
        timer: setTimeout(() => {
          if (this.#remove(waiter)) {
            waiter.refuse({
              code: 'OVERLOADED',
              message: `the gateway is busy: no execution slot was free within ${this.#limits.queueTimeoutMs} ms`,
              retryAfterMs: this.#estimate(),
            })
          }
        }, this.#limits.queueTimeoutMs),
      }
      waiter.timer.unref()
      signal?.addEventListener(
        'abort',
        () => {
          if (this.#remove(waiter)) waiter.refuse(cancelled())
        },
        { once: true },
      )
      const queue = this.#queues.get(key)
      if (queue === undefined) this.#queues.set(key, [waiter])
      else queue.push(waiter)
      this.#queued++
    })
  }

  /** Refuses what waits and what comes; running executions go on. */
  drain(): void {
    this.#draining = true
    for (const queue of this.#queues.values()) {
      for (const waiter of queue) {
        clearTimeout(waiter.timer)
        waiter.refuse(this.#shuttingDown())
      }
    }
    this.#queues.clear()
    this.#queued = 0
  }

  /** Resolves when no execution is running (at once when none is). */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #admitNow(waitedMs: number): Admitted {
    this.#running++
    this.#events.onAdmitted?.(waitedMs)
    const started = performance.now()
    let released = false
    return {
      ok: true,
      waitedMs,
      release: () => {
        if (released) return
        released = true
        this.#running--
        this.#typicalMs += EWMA_WEIGHT * (performance.now() - started - this.#typicalMs)
        this.#next()
      },
    }
  }

  /** A slot is free: the next principal in turn gets it. */
  #next(): void {
    if (this.#running === 0) for (const resolve of this.#idle.splice(0)) resolve()
    if (this.#running >= this.#limits.maxConcurrentExecutions) return
    const first = this.#queues.entries().next()
    if (first.done) return
    const [key, queue] = first.value
    // Queues are never kept empty, so there is a waiter.
    const waiter = queue.shift()!
    // Round-robin: this principal goes to the back of the line.
    this.#queues.delete(key)
    if (queue.length > 0) this.#queues.set(key, queue)
    this.#queued--
    clearTimeout(waiter.timer)
    waiter.admit(performance.now() - waiter.since)
  }

  #remove(waiter: Waiter): boolean {
    const queue = this.#queues.get(waiter.key)
    const at = queue?.indexOf(waiter) ?? -1
    if (queue === undefined || at < 0) return false
    queue.splice(at, 1)
    if (queue.length === 0) this.#queues.delete(waiter.key)
    this.#queued--
    clearTimeout(waiter.timer)
    return true
  }

  /**
   * A refusal when `key` has no token; `take` spends one when it has. Synchronous when the
   * store is (in-process), so admission order stays call order; a promise for Redis.
   */
  #rateRefusal(key: string, take: boolean): Refusal | undefined | Promise<Refusal | undefined> {
    const perMinute = this.#limits.executionsPerMinute
    if (perMinute === undefined) return undefined
    const answer = this.#store.takeToken(key, perMinute, take)
    if (!(answer instanceof Promise)) return rateRefusal(perMinute, answer)
    return answer.then(
      (answer) => rateRefusal(perMinute, answer),
      (err: unknown) => {
        if (!isSluiceError(err, 'STORE_UNAVAILABLE')) throw err
        return {
          code: 'OVERLOADED' as const,
          // The store's address stays out of what the model reads; the operator's log has it.
          message: 'the shared rate-limit store is unavailable, so no execution starts now',
          retryAfterMs: 1000,
        }
      },
    )
  }

  #full(): Refusal {
    return {
      code: 'OVERLOADED',
      message: `the gateway is busy: ${this.#running} executions running and ${this.#queued} waiting (limits.maxConcurrentExecutions, limits.maxQueuedExecutions)`,
      retryAfterMs: this.#estimate(),
    }
  }

  #shuttingDown(): Refusal {
    return {
      code: 'OVERLOADED',
      message: 'the gateway is shutting down: retry on another replica',
      retryAfterMs: 1000,
    }
  }

  /** How long until a retry may find a slot: the typical execution, times the queue ahead. */
  #estimate(): number {
    const ahead = 1 + this.#queued / this.#limits.maxConcurrentExecutions
    return Math.round(Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, this.#typicalMs * ahead)))
  }
}

function rateRefusal(perMinute: number, answer: RateAnswer): Refusal | undefined {
  if (answer.ok) return undefined
  return {
    code: 'RATE_LIMITED',
    message: `this caller may start ${perMinute} executions per minute (limits.perPrincipal.executionsPerMinute)`,
    retryAfterMs: answer.retryAfterMs,
  }
}

function cancelled(): Refusal {
  return {
    code: 'CANCELLED',
    message: 'the execution was cancelled while it waited for a slot',
    retryAfterMs: 0,
  }
}

function checkLimits(limits: AdmissionLimits): AdmissionLimits {
  for (const key of ['maxConcurrentExecutions', 'maxQueuedExecutions', 'queueTimeoutMs'] as const) {
    if (!Number.isInteger(limits[key]) || limits[key] < (key === 'maxQueuedExecutions' ? 0 : 1)) {
      throw new TypeError(`admission: ${key} must be a positive integer, not ${limits[key]}`)
    }
  }
  return limits
}

/** Whose share of admission an execution counts against: one caller, across sessions. */
export function admissionKey(principal: Principal): string {
  return JSON.stringify([principal.iss, principal.sub, principal.tenant ?? null])
}
