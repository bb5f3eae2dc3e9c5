/**
 * A sandbox worker thread: boots, then runs one execution at a time in a fresh QuickJS instance
 * and reports to the pool. Instances are built and recycled by instances.ts; one execution's
 * life is execution.ts.
 *
 * One execution per worker is what keeps executions apart: a guest that hogs the thread
 * (a CPU loop, a builtin that ignores the interrupt) delays nobody else, and a worker the
 * watchdog has to kill takes no neighbour with it.
 *
 * @module
 */
import { availableParallelism } from 'node:os'
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads'
import { Execution } from './execution.js'
import { Instances } from './instances.js'
import type { FromWorker, ToWorker, WorkerBoot, WorkerModule } from './messages.js'
import type { SandboxLimits } from './types.js'

const boot = workerData as WorkerBoot
// Messages travel on a dedicated channel (a little cheaper per hop than parentPort).
const port = boot.port ?? parentPort!

function send(message: FromWorker): void {
  port.postMessage(message)
}

/**
 * How long a worker whose guest waits on the host sleeps on the wake word before it goes back to
 * its event loop. A hop through the event loop costs tens of µs more than a futex wake-up, and an
 * in-process answer comes within that; a slow upstream's does not, and meanwhile the loop has
 * clean-up to do.
 */
const SYNC_ANSWER_WAIT_MS = 1
/**
 * How long a waiting worker spins on the wake word before it sleeps on it. Waking a sleeping
 * thread costs both sides: measured on a 2-core VM, `Atomics.notify` of a sleeper takes 9–40 µs
 * on the pool's thread and the sleeper runs again 25 µs or more later, twice the gateway's own
 * work for an in-process answer; a spinning worker sees the answer within a µs and the notify
 * finds nobody to wake. Answers slower than this are slept for.
 */
const SPIN_MS = 0.25
/**
 * Spinning takes a core, so a worker spins only while the executions running (this one
 * included) leave one for the pool's thread: fewer than the cores. Under load nobody spins.
 */
const SPIN_WHILE_RUNNING_BELOW = availableParallelism()
const wake = boot.wake === undefined ? undefined : new Int32Array(boot.wake)
const running = boot.running === undefined ? undefined : new Int32Array(boot.running)
/**
 * How long the last wait for the host took (∞ when it outlasted the synchronous window): a
 * worker whose answers come slower than SPIN_MS stops spinning until one comes fast again.
 */
let lastWaitMs = 0

let current: Execution | undefined

/** Made once the module is here (in the boot, or as the first message). */
let instances: Instances | undefined

function begin(module: WorkerModule): void {
  if (instances !== undefined) return
  const made = new Instances({
    workerId: boot.workerId,
    wasmModule: module.wasmModule,
    preludeJs: module.preludeJs,
    defaultStackBytes: boot.defaultStackBytes,
    prewarm: boot.prewarm,
    templates: boot.templates,
    faultTemplateReplay: boot.faultTemplateReplay ?? false,
    inspectMemory: boot.inspectMemory,
    onTemplateFailure: (reason) => send({ type: 'template-fallback', reason }),
    busy: () => current !== undefined,
  })
  instances = made
  warmUp()
    .then(() => {
      made.prewarm()
      send({ type: 'ready' })
    })
    .catch((e: unknown) => {
      send({ type: 'boot-failed', message: e instanceof Error ? e.message : String(e) })
    })
}

type Sink = (message: FromWorker) => void

async function execute(message: Extract<ToWorker, { type: 'execute' }>, sink: Sink): Promise<void> {
  const deadline = Date.now() + message.limits.timeoutMs
  const arrivedAt = performance.now()
  // The pool sends executions only after `ready`, which comes after the module.
  const own = instances!
  let instance: Awaited<ReturnType<Instances['take']>>
  try {
    instance = await own.take()
  } catch {
    sink({
      type: 'done',
      execId: message.execId,
      done: {
        ok: false,
        error: { code: 'INTERNAL', message: 'the sandbox could not start an instance' },
        warnings: [],
        logs: [],
        acquireMs: performance.now() - arrivedAt,
        runMs: 0,
        instanceId: '',
      },
    })
    return
  }
  const execution = new Execution({
    execId: message.execId,
    instance,
    limits: message.limits,
    program: message.program,
    acquireMs: performance.now() - arrivedAt,
    deadline,
    sink,
    needles: message.inspectNeedles,
    randomSeed: message.randomSeed,
    onFinished: (finished, poisoned) => {
      if (current === finished) current = undefined
      own.retire(instance, poisoned)
    },
  })
  current = execution
  execution.start(message.manifestJson)
  awaitAnswers()
}

function onMessage(message: ToWorker): void {
  switch (message.type) {
    case 'module':
      begin(message)
      break
    case 'execute':
      void execute(message, send)
      break
    case 'answers':
      if (current?.execId === message.execId) current.answers(message.answers)
      break
    case 'cancel':
      if (current?.execId === message.execId) current.cancel()
      break
  }
}

/**
 * While the guest waits on the host, takes the pool's next messages straight off the port,
 * spinning (see SPIN_MS) and then sleeping on the wake word between them, for up to
 * SYNC_ANSWER_WAIT_MS (never past the execution's deadline). Whatever comes later arrives
 * through the event loop as usual.
 */
function awaitAnswers(): void {
  if (wake === undefined) return
  let until = performance.now() + SYNC_ANSWER_WAIT_MS
  let waitingSince: number | undefined
  for (;;) {
    const execution = current
    if (execution === undefined || !execution.waitingOnHost) return
    // Read before looking at the port: a message posted after the look changes the word.
    const seen = Atomics.load(wake, 0)
    const next = receiveMessageOnPort(port) as { message: ToWorker } | undefined
    const now = performance.now()
    if (next !== undefined) {
      if (waitingSince !== undefined) lastWaitMs = now - waitingSince
      waitingSince = undefined
      onMessage(next.message)
      // The answer may have led to another call: the window starts again.
      until = performance.now() + SYNC_ANSWER_WAIT_MS
      continue
    }
    const leftMs = Math.min(until - now, execution.deadline - Date.now())
    if (leftMs <= 0) {
      lastWaitMs = Number.POSITIVE_INFINITY
      return
    }
    if (waitingSince === undefined) {
      waitingSince = now
      if (spinWorthIt() && spin(seen, now + Math.min(leftMs, SPIN_MS))) continue
    }
    Atomics.wait(wake, 0, seen, leftMs)
  }
}

function spinWorthIt(): boolean {
  return (
    lastWaitMs <= SPIN_MS &&
    running !== undefined &&
    Atomics.load(running, 0) < SPIN_WHILE_RUNNING_BELOW
  )
}

/** Spins until the wake word moves (true) or `untilMs` passes (false). */
function spin(seen: number, untilMs: number): boolean {
  while (Atomics.load(wake!, 0) === seen) {
    if (performance.now() >= untilMs) return false
  }
  return true
}

port.on('message', (message: ToWorker) => {
  onMessage(message)
  awaitAnswers()
})

/**
 * Exercises what a typical request does (async, Promise.all, a tool call, which is refused
 * here, a log line, a result), so the first real request finds the WASM functions it needs
 * already compiled and the template recorded.
 */
const WARM_UP_JS = `const f = async (x) => x
const r = await Promise.all([f({ n: 1 }), tools.w.f({ a: [1, 'b'] }).catch((e) => e.message)])
console.log('warm', r.length)
return r`

/** Warm-up: one throwaway run, then report ready. */
async function warmUp(): Promise<void> {
  const limits: SandboxLimits = {
    timeoutMs: 5000,
    memoryBytes: 16 * 1024 * 1024,
    stackBytes: boot.defaultStackBytes,
    maxSourceBytes: 1024,
    maxToolCalls: 0,
    maxConcurrentCalls: 1,
    maxArgsBytes: 1024,
    maxArgsDepth: 8,
    maxResultBytes: 1024,
    maxOutputBytes: 1024,
    maxOutputDepth: 8,
    maxLogBytes: 1024,
  }
  await new Promise<void>((resolve) => {
    void execute(
      {
        type: 'execute',
        execId: -1,
        program: { js: WARM_UP_JS, lines: WARM_UP_JS.split('\n').length },
        manifestJson: '{"w":{"f":"f"}}',
        limits,
      },
      (m) => {
        if (m.type === 'done') resolve()
      },
    )
  })
}

if (boot.module !== undefined) begin(boot.module)
