/**
 * The main thread's handle on one sandbox worker: start it, hand it one execution at a time,
 * route its messages, and stop it. The watchdog lives here: an execution still running at
 * `timeoutMs + watchdogGraceMs` (something escaped both the interrupt handler and the fuel
 * checks) has its worker terminated. Since a worker holds one execution, nothing else is lost.
 *
 * @module
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import type {
  FromWorker,
  ToWorker,
  WireCall,
  WorkerBoot,
  WorkerDone,
  WorkerModule,
} from './messages.js'

const BOOT_TIMEOUT_MS = 30_000

/** Under tsx/vitest this file is TypeScript and so is the worker; from dist/ both are JS. */
const runningFromSource = import.meta.url.endsWith('.ts')

export type SlotState = 'starting' | 'idle' | 'busy' | 'stopped'

export interface SlotEvents {
  /** A tool call from the execution the worker runs. */
  onCalls(slot: WorkerSlot, execId: number, calls: readonly WireCall[]): void
  /** The execution `execId` finished; the worker is idle again. */
  onDone(slot: WorkerSlot, execId: number, done: WorkerDone): void
  onTemplateFailure(slot: WorkerSlot, reason: string): void
  /** The worker is gone (crash, exit, terminate); `execId` is what it was running, if anything. */
  onLost(slot: WorkerSlot, execId: number | undefined, reason: string): void
}

export class WorkerSlot {
  readonly id: string
  state: SlotState = 'starting'
  /** The execution it runs. */
  execId: number | undefined
  /** When it last became idle (for retiring workers above the minimum). */
  idleSince = performance.now()
  /** Set when the worker should be replaced once its execution ends (a template failure). */
  retireWhenIdle = false
  readonly #worker: Worker
  readonly #port: MessagePort
  readonly #events: SlotEvents
  /** The worker's wake word (WorkerBoot.wake): bumped and notified after every message. */
  readonly #wake: Int32Array
  /** The pool's count of busy workers (WorkerBoot.running), kept by each slot's state changes. */
  readonly #running: Int32Array | undefined
  #watchdog: NodeJS.Timeout | undefined

  private constructor(
    id: string,
    worker: Worker,
    port: MessagePort,
    wake: Int32Array,
    running: Int32Array | undefined,
    events: SlotEvents,
  ) {
    this.id = id
    this.#worker = worker
    this.#port = port
    this.#wake = wake
    this.#running = running
    this.#events = events
  }

  /**
   * Starts a worker and resolves once its warm-up run finished. Without `boot.module`, `module`
   * is posted to the worker once it is made (a failure to make it stops the worker).
   */
  static start(
    boot: WorkerBoot,
    events: SlotEvents,
    module?: Promise<WorkerModule>,
  ): Promise<WorkerSlot> {
    const { port1, port2 } = new MessageChannel()
    const wake = new SharedArrayBuffer(4)
    const options = {
      workerData: { ...boot, port: port2, wake } satisfies WorkerBoot,
      transferList: [port2],
      resourceLimits: { stackSizeMb: 64 },
    }
    const worker = runningFromSource
      ? // Node 20 ignores `--import` in a worker's execArgv: register tsx's hooks from inside it.
        new Worker(
          `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}) })`,
          { ...options, eval: true },
        )
      : new Worker(new URL('./worker.js', import.meta.url), options)
    const slot = new WorkerSlot(
      boot.workerId,
      worker,
      port1,
      new Int32Array(wake),
      boot.running === undefined ? undefined : new Int32Array(boot.running),
      events,
    )
    return new Promise<WorkerSlot>((resolve, reject) => {
      const bootTimer = setTimeout(() => {
        void worker.terminate()
        reject(new Error('sluice: a sandbox worker did not start in time'))
      }, BOOT_TIMEOUT_MS)
      port1.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          clearTimeout(bootTimer)
          slot.state = 'idle'
          slot.idleSince = performance.now()
          resolve(slot)
        } else if (message.type === 'boot-failed') {
          clearTimeout(bootTimer)
          void worker.terminate()
          reject(new Error(`sluice: a sandbox worker failed to start: ${message.message}`))
        } else {
          slot.#onMessage(message)
        }
      })
      const gone = (reason: string) => {
        clearTimeout(bootTimer)
        if (slot.state === 'starting')
          reject(new Error(`sluice: a sandbox worker ${reason} during start-up`))
        slot.#lost(reason)
      }
      worker.on('error', (e) => gone(`failed: ${e.message}`))
      worker.on('exit', (code) => gone(`exited with code ${code}`))
      module?.then(
        (m) => {
          if (slot.state === 'starting')
            port1.postMessage({ type: 'module', ...m } satisfies ToWorker)
        },
        (e: unknown) => {
          clearTimeout(bootTimer)
          void worker.terminate()
          reject(e)
        },
      )
    })
  }

  /** Hands the worker an execution; it must be idle. */
  run(
    message: Extract<ToWorker, { type: 'execute' }>,
    watchdogMs: number,
    onWatchdog: () => void,
  ): void {
    this.state = 'busy'
    if (this.#running !== undefined) Atomics.add(this.#running, 0, 1)
    this.execId = message.execId
    this.#watchdog = setTimeout(() => {
      onWatchdog()
      this.terminate('the watchdog stopped it')
    }, watchdogMs)
    this.#post(message)
  }

  send(message: ToWorker): void {
    if (this.state !== 'stopped') this.#post(message)
  }

  #post(message: ToWorker): void {
    this.#port.postMessage(message)
    // After the post: a worker that finds the port empty and then this word unchanged may sleep.
    Atomics.add(this.#wake, 0, 1)
    Atomics.notify(this.#wake, 0)
  }

  #onMessage(message: FromWorker): void {
    switch (message.type) {
      case 'calls':
        if (message.execId === this.execId)
          this.#events.onCalls(this, message.execId, message.calls)
        return
      case 'done':
        if (message.execId !== this.execId) return
        clearTimeout(this.#watchdog)
        this.execId = undefined
        this.#leaveBusy()
        this.state = 'idle'
        this.idleSince = performance.now()
        this.#events.onDone(this, message.execId, message.done)
        return
      case 'template-fallback':
        this.#events.onTemplateFailure(this, message.reason)
        return
      default:
        return
    }
  }

  #leaveBusy(): void {
    if (this.state === 'busy' && this.#running !== undefined) Atomics.sub(this.#running, 0, 1)
  }

  #lost(reason: string): void {
    if (this.state === 'stopped') return
    const execId = this.execId
    this.#leaveBusy()
    this.state = 'stopped'
    this.execId = undefined
    clearTimeout(this.#watchdog)
    this.#port.close()
    this.#events.onLost(this, execId, reason)
  }

  /** Stops the worker; whatever it was running is reported through `onLost`. */
  terminate(reason: string): Promise<void> {
    const done = this.#worker.terminate().then(() => undefined)
    this.#lost(reason)
    return done
  }
}
