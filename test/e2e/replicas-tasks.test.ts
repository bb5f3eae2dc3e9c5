/**
 * Tasks across replicas: two `sluice serve` processes with one Redis store behind a round-robin
 * proxy (no sticky routing), real JWTs, the raw 2026-07-28 wire. A task created on replica A is
 * polled and fetched via B, cancelled via B while A runs it (A's upstream sees the
 * cancellation), answered via B after A asked for an approval (B resumes it), counted against
 * one per-principal limit over both, and, when A is killed while it runs, `failed` with the
 * lease message once the lease ran out. Both replicas' upstreams write to the same log files.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRedis } from '../helpers/redis.js'
import type { RoundRobin } from '../helpers/round-robin.js'
import { FIXTURES, SERVERS } from '../helpers/runtime.js'
import {
  BIG_PAYMENTS_RULE,
  readJsonl,
  startRedisServeEnv,
  startReplicas,
  writeServeConfig,
  type RedisServeEnv,
  type Replicas,
  type ServeProcess,
} from './clients/harness.js'
import { taskClient, type TaskClient } from './tasks-client.js'

const LEASE_MS = 1_500

describe.skipIf(!hasRedis)('tasks across two replicas on one Redis', () => {
  let env: RedisServeEnv
  let cluster: Replicas
  let replicas: ServeProcess[] = []
  let proxy: RoundRobin
  const file = (name: string) => join(env.dir, `${name}.jsonl`)
  const lines = (name: string) => readJsonl(file(name))

  beforeAll(async () => {
    env = await startRedisServeEnv('sluice-replica-tasks-')
    const { configFile } = writeServeConfig(env.idp, {
      dir: env.dir,
      servers: {
        rec: {
          command: process.execPath,
          args: [SERVERS.recording],
          env: { RECORD_FILE: file('calls') },
        },
        slow: {
          command: process.execPath,
          args: [join(FIXTURES, 'servers/slow.mjs')],
          env: { START_LOG: file('start'), CANCEL_LOG: file('cancel') },
        },
      },
      rules: [
        {
          id: 'fixtures',
          effect: 'allow',
          when: 'tool.server == "rec" || tool.server == "slow"',
        },
        BIG_PAYMENTS_RULE,
      ],
      extra: {
        store: { redis: { url: env.redis.url } },
        gateway: { tasks: { pollIntervalMs: 100, leaseMs: LEASE_MS, maxPerPrincipal: 2 } },
      },
    })
    cluster = await startReplicas(configFile)
    ;({ replicas, proxy } = cluster)
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
    await env?.close()
  })

  const client = async (sub: string): Promise<TaskClient> =>
    taskClient(proxy.url, { token: await env.token(sub) })

  /** The backend the proxy sends the next request to (it counts requests, round robin). */
  const next = () => proxy.served.reduce((a, b) => a + b, 0) % proxy.served.length

  /**
   * Runs `request` on replica `index`: a `tasks/get` of `taskId` first, when the next request
   * would land on the other one. Returns what it answered and checks where it went.
   */
  async function on<T>(
    index: number,
    c: TaskClient,
    taskId: string,
    request: () => Promise<T>,
  ): Promise<T> {
    if (next() !== index) await c.get(taskId)
    const before = proxy.served[index]!
    const answer = await request()
    expect(proxy.served[index], `served by replica ${index}`).toBe(before + 1)
    return answer
  }

  /** Polls `tasks/get` on replica `index` only, until the task has one of `statuses`. */
  async function untilOn(
    index: number,
    c: TaskClient,
    taskId: string,
    statuses: string[],
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 20_000
    for (;;) {
      const task = await on(index, c, taskId, () => c.get(taskId))
      if (statuses.includes(task['status'] as string)) return task
      if (Date.now() > deadline) throw new Error(`task still ${task['status']}`)
      await new Promise((resolve) => setTimeout(resolve, task['pollIntervalMs'] as number))
    }
  }

  /** Creates a task on replica 0 (A). */
  async function createOnA(c: TaskClient, code: string): Promise<string> {
    if (next() !== 0) await c.rpc('tasks/get', { taskId: 'A'.repeat(24) })
    const before = proxy.served[0]!
    const created = await c.execute(code)
    expect(proxy.served[0]).toBe(before + 1)
    expect(created).toMatchObject({ resultType: 'task', status: 'working' })
    return created['taskId'] as string
  }

  const arrived = (tag: string) =>
    expect
      .poll(() => lines('start').filter((l) => l['tag'] === tag).length, {
        timeout: 20_000,
        interval: 20,
      })
      .toBe(1)

  it('is created on A, polled and fetched via B', async () => {
    const c = await client('alice')
    const taskId = await createOnA(
      c,
      "const waited = await tools.slow.slow({ ms: 500, tag: 'across' }); return waited",
    )
    const working = await on(1, c, taskId, () => c.get(taskId))
    expect(working).toMatchObject({ taskId })
    const done = await untilOn(1, c, taskId, ['completed', 'failed', 'cancelled'])
    expect(done).toMatchObject({
      status: 'completed',
      result: { structuredContent: { ok: true, result: 'waited 500 ms' } },
    })
    // The same answer from A, and the work ran once.
    expect(await on(0, c, taskId, () => c.get(taskId))).toEqual(done)
    expect(lines('start').filter((l) => l['tag'] === 'across')).toHaveLength(1)
  })

  it('is cancelled via B while A runs it: cancelled with CANCELLED, and the upstream on A saw the cancellation', async () => {
    const c = await client('bob')
    const taskId = await createOnA(
      c,
      "await tools.slow.slow({ ms: 120000, tag: 'cancel-across' }); return 'done'",
    )
    await arrived('cancel-across')
    const ack = await on(1, c, taskId, () => c.cancel(taskId))
    expect(ack['resultType']).toBe('complete')
    const cancelled = await untilOn(1, c, taskId, ['completed', 'failed', 'cancelled'])
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      result: { isError: true, structuredContent: { error: { code: 'CANCELLED' } } },
    })
    await expect
      .poll(() => lines('cancel').filter((l) => l['tag'] === 'cancel-across').length, {
        timeout: 10_000,
        interval: 20,
      })
      .toBe(1)
  })

  it('asks for an approval on A; the answer via B resumes it on B, and nothing runs twice', async () => {
    const c = await client('carol')
    const taskId = await createOnA(
      c,
      `const item = await tools.rec.read_item({ id: 'approve-across' })
       const paid = await tools.rec.pay({ amount: 5000, to: 'approve-across' })
       return { item: item.id, paid }`,
    )
    const waiting = await untilOn(0, c, taskId, ['input_required', 'completed', 'failed'])
    expect(waiting).toMatchObject({
      status: 'input_required',
      inputRequests: { 'approval-1': { method: 'elicitation/create' } },
    })
    await on(1, c, taskId, () =>
      c.update(taskId, { 'approval-1': { action: 'accept', content: { approve: true } } }),
    )
    const done = await untilOn(0, c, taskId, ['completed', 'failed', 'cancelled'])
    expect(done).toMatchObject({
      status: 'completed',
      result: {
        structuredContent: { ok: true, result: { item: 'approve-across', paid: { paid: 5000 } } },
      },
    })
    const calls = lines('calls').filter(
      (l) =>
        (l['args'] as Record<string, unknown>)['id'] === 'approve-across' ||
        (l['args'] as Record<string, unknown>)['to'] === 'approve-across',
    )
    expect(calls.map((l) => l['tool'])).toEqual(['read_item', 'pay'])
  })

  it('counts one limit over both replicas: a task on A and one on B, and the third is TASK_LIMIT', async () => {
    const c = await client('dave')
    const first = await createOnA(
      c,
      "await tools.slow.slow({ ms: 120000, tag: 'limit-a' }); return 1",
    )
    const second = await on(1, c, first, () =>
      c.execute("await tools.slow.slow({ ms: 120000, tag: 'limit-b' }); return 2"),
    )
    expect(second).toMatchObject({ resultType: 'task' })
    const third = await c.execute('return 3')
    expect(third['structuredContent']).toMatchObject({ error: { code: 'TASK_LIMIT' } })
    for (const taskId of [first, second['taskId'] as string]) {
      await c.cancel(taskId)
      await c.until(taskId, ['cancelled'])
    }
  })

  it('A is killed while it runs the task: failed with the lease message once the lease ran out', async () => {
    const c = await client('erin')
    const taskId = await createOnA(
      c,
      "await tools.slow.slow({ ms: 120000, tag: 'killed' }); return 'never'",
    )
    await arrived('killed')
    const a = replicas[0]!
    const gone = new Promise<void>((resolve) => a.child.once('exit', () => resolve()))
    a.child.kill('SIGKILL')
    await gone
    const killedAt = Date.now()
    proxy.setBackends([replicas[1]!.url])
    const failed = await c.until(taskId, ['completed', 'failed', 'cancelled'])
    const message = `the replica running this task stopped renewing its lease (gateway.tasks.leaseMs: ${LEASE_MS} ms), so it probably stopped; whether the execution's calls ran is unknown. Check before running the code again`
    expect(failed).toMatchObject({
      status: 'failed',
      statusMessage: message,
      error: { code: -32603, message },
    })
    expect(failed).not.toHaveProperty('result')
    // Not before the lease could have run out (its last renewal was at most a third of it ago).
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(LEASE_MS * (2 / 3) - 50)
    // And it stays failed.
    expect((await c.get(taskId))['status']).toBe('failed')
  })
})
