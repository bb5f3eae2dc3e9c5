/**
 * The task state machine (src/engine/tasks.ts) on a real in-process store, where the end-to-end
 * tests cannot steer the faults: two `Tasks` on one store are two replicas, and the execution is
 * a function the test ends. A cancel whose announcement is lost still stops the runner at its
 * next renewal; a store that refuses the task leaves no place taken; a result the store cannot
 * hold is a failed task that says so; a runner that ends after its lease was declared lost does
 * not overwrite the terminal status; a cancel of a task whose runner stopped ends it at once.
 */
import { describe, expect, it } from 'vitest'
import { SluiceError } from '../../src/errors.js'
import { Tasks, type TaskSettings } from '../../src/engine/tasks.js'
import { MemoryStore, type SharedStore } from '../../src/store/index.js'
import type { ExecuteOptions } from '../../src/engine/index.js'
import type { ExecutionResult, Principal } from '../../src/types.js'

const alice = {
  sub: 'alice',
  iss: 'test',
  scopes: [],
  claims: {},
  authMethod: 'local',
} as unknown as Principal

const settings = (overrides: Partial<TaskSettings> = {}): TaskSettings => ({
  ttlMs: 60_000,
  pollIntervalMs: 100,
  leaseMs: 300,
  maxPerPrincipal: 1,
  approvalTimeoutMs: 1_000,
  ...overrides,
})

const ended = (result: unknown): ExecutionResult => ({
  ok: true,
  result: result as ExecutionResult['result'],
  logs: [],
  calls: [],
})

/** An execution the test ends, or that ends when it is aborted (as the sandbox does). */
function controlled() {
  let finish: (result: ExecutionResult) => void = () => {}
  const started: ExecuteOptions[] = []
  const run = (_p: Principal, _code: string, options: ExecuteOptions) =>
    new Promise<ExecutionResult>((resolve) => {
      started.push(options)
      finish = resolve
      options.signal?.addEventListener('abort', () =>
        resolve({
          ok: false,
          result: undefined,
          logs: [],
          calls: [],
          error: { code: 'CANCELLED', message: 'the execution was cancelled' },
        }),
      )
    })
  return { run, started, finish: (result: ExecutionResult) => finish(result) }
}

/** The store with some operations replaced (a fault, a lost message). */
function faulty(store: SharedStore, overrides: Partial<SharedStore>): SharedStore {
  return {
    kind: store.kind,
    takeToken: (...a) => store.takeToken(...a),
    put: (...a) => store.put(...a),
    take: (...a) => store.take(...a),
    get: (...a) => store.get(...a),
    swap: (...a) => store.swap(...a),
    hold: (...a) => store.hold(...a),
    isHeld: (...a) => store.isHeld(...a),
    release: (...a) => store.release(...a),
    publish: (...a) => store.publish(...a),
    subscribe: (...a) => store.subscribe(...a),
    close: () => store.close(),
    ...overrides,
  }
}

function replica(
  store: SharedStore,
  run: (p: Principal, code: string, o: ExecuteOptions) => Promise<ExecutionResult>,
  overrides: Partial<TaskSettings> = {},
  log?: (level: string, message: string) => void,
) {
  return new Tasks({
    store,
    settings: () => settings(overrides),
    ownerKey: (p) => p.sub,
    run,
    ...(log === undefined ? {} : { log }),
  })
}

const down = new SluiceError(
  'STORE_UNAVAILABLE',
  'the Redis store at redis://127.0.0.1:1/ did not answer: connection refused',
)

describe('tasks', () => {
  it('a cancel whose announcement is lost still stops the runner at its next renewal', async () => {
    const store = new MemoryStore()
    const exec = controlled()
    const a = replica(store, exec.run)
    // B's announcement goes nowhere, as one sent while A's subscriber reconnects.
    const b = replica(faulty(store, { publish: async () => {} }), exec.run)
    try {
      const started = await a.start(alice, 'code')
      if (!started.ok) throw new Error(started.error.message)
      const { taskId } = started.task
      expect(await b.cancel(alice, taskId)).toBe(true)
      expect((await b.get(alice, taskId))?.status).toBe('working')
      await expect
        .poll(async () => (await b.get(alice, taskId))?.status, { timeout: 5_000, interval: 20 })
        .toBe('cancelled')
      expect((await b.get(alice, taskId))?.result?.error?.code).toBe('CANCELLED')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a store that refuses the task: OVERLOADED with its reason, and no place stays taken', async () => {
    const store = new MemoryStore()
    const exec = controlled()
    const broken = replica(
      faulty(store, {
        put: async () => {
          throw down
        },
      }),
      exec.run,
    )
    const working = replica(store, exec.run)
    try {
      expect(await broken.start(alice, 'code')).toEqual({
        ok: false,
        error: {
          code: 'OVERLOADED',
          message:
            'the task could not be created: the Redis store at redis://127.0.0.1:1/ did not answer: connection refused; nothing ran, send the call again',
          retryAfterMs: 1_000,
        },
      })
      expect(exec.started).toHaveLength(0)
      // maxPerPrincipal is 1: the place the refused task held is free again.
      const started = await working.start(alice, 'code')
      expect(started.ok).toBe(true)
      exec.finish(ended(1))
    } finally {
      await Promise.all([broken.close(), working.close()])
    }
  })

  it('a result the store cannot hold: the task is failed and says why', async () => {
    const store = new MemoryStore({ maxChars: 4_000 })
    const exec = controlled()
    const a = replica(store, exec.run)
    try {
      const started = await a.start(alice, 'code')
      if (!started.ok) throw new Error(started.error.message)
      exec.finish(ended('x'.repeat(5_000)))
      await expect
        .poll(async () => (await a.get(alice, started.task.taskId))?.status, {
          timeout: 5_000,
          interval: 20,
        })
        .toBe('failed')
      const task = await a.get(alice, started.task.taskId)
      expect(task?.failure).toMatch(
        /^the execution ended \(completed\) but the store could not keep its result: the in-process store is full: it holds \d+ of 4000 characters; configure store\.redis for more$/,
      )
      expect(task).not.toHaveProperty('result')
    } finally {
      await a.close()
    }
  })

  it('a runner whose lease was declared lost does not overwrite the failed status when it ends', async () => {
    const store = new MemoryStore()
    const exec = controlled()
    const logged: string[] = []
    let renewals = 0
    // A's renewals fail from the first one on (a network partition between A and the store).
    const a = replica(
      faulty(store, {
        hold: async (...args) => {
          if (renewals++ > 0) throw down
          return store.hold(...args)
        },
      }),
      exec.run,
      {},
      (_level, message) => logged.push(message),
    )
    const b = replica(store, exec.run)
    try {
      const started = await a.start(alice, 'code')
      if (!started.ok) throw new Error(started.error.message)
      const { taskId } = started.task
      await expect
        .poll(async () => (await b.get(alice, taskId))?.status, { timeout: 5_000, interval: 20 })
        .toBe('failed')
      exec.finish(ended('late'))
      await expect
        .poll(() => logged.includes('a task ended after another replica had decided it'), {
          timeout: 5_000,
          interval: 10,
        })
        .toBe(true)
      const task = await b.get(alice, taskId)
      expect(task?.status).toBe('failed')
      expect(task?.failure).toBe(
        "the replica running this task stopped renewing its lease (gateway.tasks.leaseMs: 300 ms), so it probably stopped; whether the execution's calls ran is unknown. Check before running the code again",
      )
      expect(logged).toContain('a task lease could not be renewed')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('a cancel of a task whose runner stopped renewing ends it at once, saying so', async () => {
    const store = new MemoryStore()
    const exec = controlled()
    let renewals = 0
    const a = replica(
      faulty(store, {
        hold: async (...args) => {
          if (renewals++ > 0) throw down
          return store.hold(...args)
        },
      }),
      exec.run,
    )
    const b = replica(store, exec.run)
    try {
      const started = await a.start(alice, 'code')
      if (!started.ok) throw new Error(started.error.message)
      const { taskId } = started.task
      await expect
        .poll(() => store.isHeld('tasks:alice', taskId), { timeout: 5_000, interval: 20 })
        .toBe(false)
      expect(await b.cancel(alice, taskId)).toBe(true)
      expect(await b.get(alice, taskId)).toMatchObject({
        status: 'cancelled',
        statusMessage: 'cancelled by tasks/cancel; the replica running it had stopped',
      })
      exec.finish(ended('late'))
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})
