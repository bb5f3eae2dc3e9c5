/**
 * The data labels of one execution (`execution.labels` in policy), the order in which its calls
 * may read and add to them, and the start-up check of per-tool settings (a `tools:` key must
 * name a tool its server has).
 *
 * A call adds its tool's labels when it is authorised (allow, or approve when the human is
 * asked), whether it then succeeds, fails or is still running; a denied or refused call adds
 * none. Calls are decided in the order the guest issued them (`call.index`), not the order in
 * which they happen to reach the decision: in `Promise.all([crm.read(), mail.send()])` both
 * calls are dispatched at once, and without an order `send` could be decided before `read` had
 * added `confidential`. So each call waits for its **turn** (every call with a lower index has
 * passed) before it reads the labels, and passes when it is decided. The turn spans only what
 * precedes the decision: upstream calls still run in parallel.
 *
 * Every index the sandbox hands out must pass exactly once (the dispatcher does it in
 * `finally`; the journal of a resumed run does it for calls it answers itself), or the calls
 * after it wait until the execution ends. Passing twice is harmless.
 *
 * @module
 */
import { SluiceError } from '../errors.js'

const NONE: readonly string[] = Object.freeze([])

export class LabelLedger {
  /** The lowest index that has not passed: the call whose turn it is. */
  #next = 0
  /** Indices above {@link #next} that passed already (refused before they were decided). */
  readonly #passed = new Set<number>()
  /** Calls waiting for their turn, by index. */
  readonly #waiting = new Map<number, () => void>()
  /** The index that asked for its turn and has it, until it passes. */
  #holder: number | undefined
  /** Every label, in first-seen order. */
  readonly #labels: string[] = []
  readonly #seen = new Set<string>()
  /** The labels each call added (for the journal of a run that stops at an approval). */
  readonly #byIndex = new Map<number, string[]>()

  /**
   * Resolves when every call with a lower index has passed. Rejects with `CANCELLED` when
   * `signal` aborts first (the execution ended), so a wait never outlives its execution.
   *
   * @throws TypeError (as a rejection) when `index` has passed already or is waiting already.
   */
  turn(index: number, signal?: AbortSignal): Promise<void> {
    if (!Number.isSafeInteger(index) || index < 0)
      return Promise.reject(new TypeError(`turn: ${index} is not a call index`))
    if (index < this.#next || this.#passed.has(index) || this.#waiting.has(index))
      return Promise.reject(new TypeError(`turn: call ${index} asked for its turn twice`))
    if (index === this.#next) {
      this.#holder = index
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#waiting.delete(index)
        reject(new SluiceError('CANCELLED', 'the execution ended while the call waited its turn'))
      }
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiting.set(index, () => {
        signal?.removeEventListener('abort', onAbort)
        this.#holder = index
        resolve()
      })
    })
  }

  /**
   * Call `index`, which holds the turn, was authorised: its labels join the execution's, then
   * the next call goes on.
   *
   * @throws TypeError when `index` does not hold the turn.
   */
  authorise(index: number, labels: readonly string[]): void {
    if (this.#holder !== index)
      throw new TypeError(`LabelLedger.authorise: call ${index} does not hold the turn`)
    this.#record(index, labels)
    this.pass(index)
  }

  /**
   * Adds labels on behalf of the call that holds the turn, before its decision (a PII token in
   * its arguments carries the labels of the call that produced it).
   *
   * @throws TypeError when no call holds the turn: labels added outside a turn would race.
   */
  add(labels: readonly string[]): void {
    if (this.#holder === undefined)
      throw new TypeError('LabelLedger.add: only the call that holds the turn may add labels')
    this.#record(this.#holder, labels)
  }

  /** Call `index` is done with its turn, authorised or not. Idempotent. */
  pass(index: number): void {
    if (index < this.#next || this.#passed.has(index)) return
    this.#passed.add(index)
    if (this.#holder === index) this.#holder = undefined
    while (this.#passed.delete(this.#next)) this.#next += 1
    const wake = this.#waiting.get(this.#next)
    if (wake !== undefined) {
      this.#waiting.delete(this.#next)
      wake()
    }
  }

  /** The execution's labels so far, in first-seen order. */
  labels(): readonly string[] {
    return [...this.#labels]
  }

  /** The labels call `index` added (its tool's, and any added during its turn). */
  labelsOf(index: number): readonly string[] {
    const own = this.#byIndex.get(index)
    return own === undefined ? NONE : [...own]
  }

  #record(index: number, labels: readonly string[]): void {
    if (labels.length === 0) return
    const own = this.#byIndex.get(index) ?? []
    for (const label of labels) {
      if (!own.includes(label)) own.push(label)
      if (this.#seen.has(label)) continue
      this.#seen.add(label)
      this.#labels.push(label)
    }
    this.#byIndex.set(index, own)
  }
}
