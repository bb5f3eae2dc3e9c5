/**
 * Tasks over MCP 2026-07-28 (the `io.modelcontextprotocol/tasks` extension) against the real
 * gateway and engine: real JWTs for two callers, the recording fixture and a slow fixture that
 * logs each call as it arrives and each cancellation it receives. The client speaks the raw wire
 * (tasks-client.ts): the SDK 2.x client has no task runtime.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startIdp, type Idp } from '../helpers/idp.js'
import { FIXTURES, testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { startGateway, type Gateway } from './helpers.js'
import { TASKS, taskClient, type TaskClient } from './tasks-client.js'

const AUDIENCE = 'https://sluice.test/mcp'
const POLICY = `
rules:
  - id: fixtures
    effect: allow
    when: tool.server == "rec" || tool.server == "slow"
  - id: big-payments-need-a-human
    effect: approve
    description: payments over 1000 need a human
    when: tool.server == "rec" && tool.name == "pay" && args.amount > 1000
`
const TASK_ID = /^[A-Za-z0-9_-]{24}$/
const MAX_PER_PRINCIPAL = 2

interface Fixture {
  rt: TestRuntime
  gw: Gateway
  log(name: 'start' | 'cancel'): { tag: string | null }[]
  client(sub: string, capabilities?: Record<string, unknown>): Promise<TaskClient>
  close(): Promise<void>
}

async function fixture(idp: Idp, gateway: Record<string, unknown>): Promise<Fixture> {
  const logs = mkdtempSync(join(tmpdir(), 'sluice-tasks-'))
  const logFile = (name: string) => join(logs, `${name}.jsonl`)
  const rt = await testRuntime({
    recording: true,
    policy: POLICY,
    config: {
      servers: {
        slow: {
          command: process.execPath,
          args: [join(FIXTURES, 'servers/slow.mjs')],
          env: { START_LOG: logFile('start'), CANCEL_LOG: logFile('cancel') },
        },
      },
      identity: {
        audience: AUDIENCE,
        issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
      },
      gateway,
    },
  })
  const gw = await startGateway(rt)
  return {
    rt,
    gw,
    log: (name) =>
      existsSync(logFile(name))
        ? readFileSync(logFile(name), 'utf8')
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as { tag: string | null })
        : [],
    client: async (sub, capabilities) =>
      taskClient(gw.url, {
        token: await idp.mint({ sub, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 }),
        ...(capabilities === undefined ? {} : { capabilities }),
      }),
    close: async () => {
      await gw.close()
      await rt.close()
      rmSync(logs, { recursive: true, force: true })
    },
  }
}

/** The task fields of SEP-2663, and nothing a created task must not carry. */
function expectCreated(created: Record<string, unknown>, ttlMs: number): string {
  expect(created).toMatchObject({
    resultType: 'task',
    status: 'working',
    statusMessage: 'the execution is running',
    ttlMs,
    pollIntervalMs: 100,
  })
  expect(created['taskId']).toMatch(TASK_ID)
  expect(Date.parse(created['createdAt'] as string)).toBeGreaterThan(Date.now() - 60_000)
  expect(created['lastUpdatedAt']).toBe(created['createdAt'])
  for (const absent of ['result', 'error', 'inputRequests', 'requestState', 'task'])
    expect(created).not.toHaveProperty(absent)
  return created['taskId'] as string
}

const structured = (task: Record<string, unknown>) =>
  (task['result'] as { structuredContent: Record<string, unknown> }).structuredContent

describe('tasks over MCP 2026-07-28, one gateway', () => {
  let idp: Idp
  let f: Fixture
  beforeAll(async () => {
    idp = await startIdp()
    f = await fixture(idp, { tasks: { pollIntervalMs: 100, maxPerPrincipal: MAX_PER_PRINCIPAL } })
  }, 60_000)
  afterAll(async () => {
    await f?.close()
    await idp?.close()
  })

  /** Waits until the slow fixture has received the call tagged `tag`. */
  const arrived = (tag: string) =>
    expect
      .poll(() => f.log('start').some((l) => l.tag === tag), { timeout: 20_000, interval: 20 })
      .toBe(true)

  it('is announced; without the extension on the request, execute_code answers at once and tasks/* are -32021', async () => {
    const plain = await f.client('alice-1', { elicitation: { form: {} } })
    const discover = await plain.ok('server/discover')
    expect(discover['capabilities']).toMatchObject({ extensions: { [TASKS]: {} } })
    const result = await plain.execute('return 6 * 7')
    expect(result).not.toHaveProperty('taskId')
    expect(result['resultType']).toBe('complete')
    expect(result['structuredContent']).toMatchObject({ ok: true, result: 42 })
    for (const [method, params] of [
      ['tasks/get', { taskId: 'a'.repeat(24) }],
      ['tasks/cancel', { taskId: 'a'.repeat(24) }],
      ['tasks/update', { taskId: 'a'.repeat(24), inputResponses: {} }],
    ] as const) {
      const answer = await plain.rpc(method, params)
      expect(answer.error, method).toMatchObject({
        code: -32021,
        data: { requiredCapabilities: { extensions: { [TASKS]: {} } } },
      })
    }
    // SEP-2663 removed both; the revision has no such methods.
    const withTasks = await f.client('alice-2')
    expect((await withTasks.rpc('tasks/result', { taskId: 'a'.repeat(24) })).error?.code).toBe(
      -32601,
    )
    expect((await withTasks.rpc('tasks/list')).error?.code).toBe(-32601)
  })

  it('is created at once, found at once, polled to completion, and its result is inlined', async () => {
    const c = await f.client('alice-3')
    const created = await c.execute(
      `const item = await tools.rec.read_item({ id: 'task-1' })
       return item.title`,
    )
    const taskId = expectCreated(created, 3_600_000)
    // Durable before the answer: a get right after it finds the task.
    expect(await c.get(taskId)).toMatchObject({
      resultType: 'complete',
      taskId,
      createdAt: created['createdAt'],
    })
    const done = await c.until(taskId, ['completed', 'failed', 'cancelled'])
    expect(done).toMatchObject({
      resultType: 'complete',
      taskId,
      status: 'completed',
      statusMessage: 'the execution completed',
      createdAt: created['createdAt'],
      ttlMs: 3_600_000,
      result: { content: [{ type: 'text', text: '"Item task-1"' }] },
    })
    expect(structured(done)).toMatchObject({
      ok: true,
      result: 'Item task-1',
      calls: [{ tool: 'rec.read_item', ok: true, decision: 'allow' }],
    })
    expect(done).not.toHaveProperty('requestState')
    expect(done['result']).not.toHaveProperty('isError')
    expect(Date.parse(done['lastUpdatedAt'] as string)).toBeGreaterThanOrEqual(
      Date.parse(done['createdAt'] as string),
    )
    // Terminal: asked again, the same.
    expect(await c.get(taskId)).toEqual(done)
    expect(f.rt.recorded().filter((r) => r.args['id'] === 'task-1')).toHaveLength(1)
  })

  it('an execution that fails completes with isError: a tool error is not a failed task', async () => {
    const c = await f.client('alice-4')
    const taskId = expectCreated(await c.execute("throw new Error('boom')"), 3_600_000)
    const done = await c.until(taskId, ['completed', 'failed', 'cancelled'])
    expect(done).toMatchObject({
      status: 'completed',
      statusMessage: 'the execution failed: RUNTIME_ERROR',
      result: { isError: true },
    })
    expect(structured(done)).toMatchObject({ ok: false, error: { code: 'RUNTIME_ERROR' } })
    expect(done).not.toHaveProperty('error')
  })

  it('tasks/cancel while an inner call hangs: an empty ack, then cancelled with CANCELLED, and the upstream saw the cancellation', async () => {
    const c = await f.client('alice-5')
    const taskId = expectCreated(
      await c.execute("await tools.slow.slow({ ms: 120000, tag: 'cancel-me' }); return 'done'"),
      3_600_000,
    )
    await arrived('cancel-me')
    expect((await c.get(taskId))['status']).toBe('working')
    const ack = await c.cancel(taskId)
    expect(Object.keys(ack).sort()).toEqual(['_meta', 'resultType'])
    expect(ack['resultType']).toBe('complete')
    const cancelled = await c.until(taskId, ['completed', 'failed', 'cancelled'])
    expect(cancelled).toMatchObject({
      status: 'cancelled',
      statusMessage: 'cancelled by tasks/cancel',
      result: { isError: true },
    })
    expect(structured(cancelled)).toMatchObject({ ok: false, error: { code: 'CANCELLED' } })
    await expect
      .poll(() => f.log('cancel').filter((l) => l.tag === 'cancel-me').length, {
        timeout: 10_000,
        interval: 20,
      })
      .toBe(1)
    // Cancelling a finished task: the same empty ack, and it stays as it ended.
    const again = await c.cancel(taskId)
    expect(Object.keys(again).sort()).toEqual(['_meta', 'resultType'])
    expect((await c.get(taskId))['status']).toBe('cancelled')
  })

  it("an unknown id, a forged one and another caller's id all get the same -32602, on get, update and cancel", async () => {
    const alice = await f.client('alice-6')
    const mallory = await f.client('mallory')
    const taskId = expectCreated(await alice.execute('return 1'), 3_600_000)
    await alice.until(taskId, ['completed'])
    const refusal = (id: string) => ({
      code: -32602,
      message: `Unknown task ${JSON.stringify(id.slice(0, 64))}: this caller has no task with that id (it was never created, belongs to another caller, or its ttlMs ran out)`,
    })
    const ids = [taskId, 'A'.repeat(24), `${taskId}:cancel`, '../../task', 'x'.repeat(300), '']
    for (const id of ids) {
      for (const [method, params] of [
        ['tasks/get', { taskId: id }],
        ['tasks/cancel', { taskId: id }],
        ['tasks/update', { taskId: id, inputResponses: { 'approval-1': { action: 'accept' } } }],
      ] as const) {
        const answer = await mallory.rpc(method, params)
        expect(answer.error, `${method} ${id.slice(0, 30)}`).toEqual(refusal(id))
      }
    }
    // Alice's task is untouched by all that.
    expect(await alice.get(taskId)).toMatchObject({ status: 'completed' })
  })

  it(`holds ${MAX_PER_PRINCIPAL} tasks per caller at once; the next is TASK_LIMIT; another caller is not counted; an ended one frees its place`, async () => {
    const c = await f.client('carol')
    const ids: string[] = []
    for (let i = 0; i < MAX_PER_PRINCIPAL; i++) {
      ids.push(
        expectCreated(
          await c.execute(`await tools.slow.slow({ ms: 120000, tag: 'limit-${i}' }); return ${i}`),
          3_600_000,
        ),
      )
    }
    const refused = await c.execute('return "one too many"')
    expect(refused).not.toHaveProperty('taskId')
    expect(refused).toMatchObject({ resultType: 'complete', isError: true })
    expect(refused['structuredContent']).toMatchObject({
      ok: false,
      error: {
        code: 'TASK_LIMIT',
        message: `this caller has ${MAX_PER_PRINCIPAL} tasks working or waiting for input, the most gateway.tasks.maxPerPrincipal (${MAX_PER_PRINCIPAL}) allows; wait for one to end, or cancel one with tasks/cancel`,
      },
    })
    // Another caller has places of its own.
    const dave = await f.client('dave')
    const daves = expectCreated(await dave.execute('return "dave"'), 3_600_000)
    expect(await dave.until(daves, ['completed'])).toMatchObject({ status: 'completed' })
    // One ends: its place is free for the next.
    await c.cancel(ids[0]!)
    await c.until(ids[0]!, ['cancelled'])
    const next = expectCreated(await c.execute('return "next"'), 3_600_000)
    expect(structured(await c.until(next, ['completed']))).toMatchObject({ result: 'next' })
    await c.cancel(ids[1]!)
    await c.until(ids[1]!, ['cancelled'])
  })

  describe('an approve rule inside a task', () => {
    const PAY = (to: string) =>
      `const before = await tools.rec.read_item({ id: 'before-${to}' })
       const paid = await tools.rec.pay({ amount: 5000, to: '${to}' })
       return { before: before.id, paid }`
    const calls = (key: string, value: string) =>
      f.rt.recorded().filter((r) => r.args[key] === value)

    it('makes the task input_required; tasks/update with yes resumes it, and nothing runs twice', async () => {
      const c = await f.client('alice-7')
      const taskId = expectCreated(await c.execute(PAY('yes')), 3_600_000)
      const waiting = await c.until(taskId, ['input_required', 'completed', 'failed'])
      expect(waiting).toMatchObject({
        status: 'input_required',
        statusMessage: 'waiting for a human to approve rec.pay',
        inputRequests: {
          'approval-1': {
            method: 'elicitation/create',
            params: {
              mode: 'form',
              message:
                'Allow the call rec.pay?\nArguments: {"amount":5000,"to":"yes"}\n' +
                'Policy: rule "big-payments-need-a-human" asks a human to approve this call: payments over 1000 need a human',
            },
          },
        },
      })
      expect(waiting).not.toHaveProperty('requestState')
      expect(calls('to', 'yes')).toEqual([])
      // An answer to a key that is not pending is acknowledged and ignored.
      const ignored = await c.update(taskId, {
        'approval-9': { action: 'accept', content: { approve: true } },
      })
      expect(ignored['resultType']).toBe('complete')
      expect((await c.get(taskId))['status']).toBe('input_required')
      const ack = await c.update(taskId, {
        'approval-1': { action: 'accept', content: { approve: true } },
      })
      expect(Object.keys(ack).sort()).toEqual(['_meta', 'resultType'])
      const done = await c.until(taskId, ['completed', 'failed', 'cancelled'])
      expect(done).toMatchObject({ status: 'completed' })
      expect(done).not.toHaveProperty('inputRequests')
      expect(structured(done)).toMatchObject({
        ok: true,
        result: { before: 'before-yes', paid: { paid: 5000 } },
        calls: [
          { tool: 'rec.read_item', ok: true, decision: 'allow' },
          { tool: 'rec.pay', ok: true, decision: 'approve' },
        ],
      })
      expect(calls('id', 'before-yes')).toHaveLength(1)
      expect(calls('to', 'yes')).toHaveLength(1)
      // A second answer to the same question changes nothing.
      await c.update(taskId, { 'approval-1': { action: 'accept', content: { approve: true } } })
      expect(await c.get(taskId)).toEqual(await c.get(taskId))
      expect(calls('to', 'yes')).toHaveLength(1)
    })

    it('a refusal completes the task with the call APPROVAL_DENIED; the upstream never sees it', async () => {
      const c = await f.client('alice-8')
      const taskId = expectCreated(
        await c.execute(
          `try { await tools.rec.pay({ amount: 5000, to: 'no' }) } catch (e) { return e.code }`,
        ),
        3_600_000,
      )
      await c.until(taskId, ['input_required'])
      await c.update(taskId, { 'approval-1': { action: 'decline' } })
      const done = await c.until(taskId, ['completed', 'failed', 'cancelled'])
      expect(structured(done)).toMatchObject({
        ok: true,
        result: 'APPROVAL_DENIED',
        calls: [{ tool: 'rec.pay', ok: false, code: 'APPROVAL_DENIED' }],
      })
      expect(calls('to', 'no')).toEqual([])
    })

    it('tasks/cancel while it waits: cancelled at once, and a later answer runs nothing', async () => {
      const c = await f.client('alice-9')
      const taskId = expectCreated(await c.execute(PAY('cancelled')), 3_600_000)
      await c.until(taskId, ['input_required'])
      await c.cancel(taskId)
      expect(await c.get(taskId)).toMatchObject({
        status: 'cancelled',
        statusMessage: 'cancelled by tasks/cancel while it waited for an approval',
      })
      await c.update(taskId, { 'approval-1': { action: 'accept', content: { approve: true } } })
      expect((await c.get(taskId))['status']).toBe('cancelled')
      expect(calls('to', 'cancelled')).toEqual([])
    })

    it('a client that cannot answer an elicitation gets the call refused, not a question', async () => {
      const c = await f.client('alice-10', { extensions: { [TASKS]: {} } })
      const taskId = expectCreated(await c.execute(PAY('cannot-ask')), 3_600_000)
      const done = await c.until(taskId, ['completed', 'failed', 'cancelled', 'input_required'])
      expect(done['status']).toBe('completed')
      expect(structured(done)).toMatchObject({
        ok: false,
        error: {
          code: 'APPROVAL_DENIED',
          message: expect.stringContaining(
            'rec.pay was not run: it needs human approval and this client cannot be asked (no elicitation support) (rule big-payments-need-a-human)',
          ),
        },
        calls: [
          { tool: 'rec.read_item', ok: true },
          { tool: 'rec.pay', ok: false, code: 'APPROVAL_DENIED' },
        ],
      })
      expect(calls('to', 'cannot-ask')).toEqual([])
    })
  })
})

describe('tasks over MCP 2026-07-28, short clocks', () => {
  let idp: Idp
  let f: Fixture
  const TTL_MS = 2_000
  const APPROVAL_MS = 300
  beforeAll(async () => {
    idp = await startIdp()
    f = await fixture(idp, {
      approvalTimeoutMs: APPROVAL_MS,
      tasks: { pollIntervalMs: 100, ttlMs: TTL_MS },
    })
  }, 60_000)
  afterAll(async () => {
    await f?.close()
    await idp?.close()
  })

  it('an approval nobody answers completes the task with APPROVAL_DENIED', async () => {
    const c = await f.client('alice-11')
    const taskId = expectCreated(
      await c.execute(
        `await tools.rec.read_item({ id: 'unanswered' })
         return await tools.rec.pay({ amount: 5000, to: 'unanswered' })`,
      ),
      TTL_MS,
    )
    const done = await c.until(taskId, ['completed', 'failed', 'cancelled'])
    expect(done).toMatchObject({ status: 'completed', statusMessage: 'the approval expired' })
    expect(structured(done)).toEqual({
      ok: false,
      result: null,
      logs: [],
      calls: [expect.objectContaining({ tool: 'rec.read_item', ok: true })],
      error: {
        code: 'APPROVAL_DENIED',
        message: `no human answered the approval of rec.pay within gateway.approvalTimeoutMs (${APPROVAL_MS} ms); the calls before it ran, nothing after it. Run the script again to ask again`,
      },
    })
    // Too late: the answer runs nothing.
    await c.update(taskId, { 'approval-1': { action: 'accept', content: { approve: true } } })
    expect((await c.get(taskId))['status']).toBe('completed')
    expect(f.rt.recorded().filter((r) => r.args['to'] === 'unanswered')).toEqual([])
  })

  it('is kept for its ttlMs, then gone: an unknown task', async () => {
    const c = await f.client('alice-12')
    const created = await c.execute('return "short-lived"')
    const taskId = expectCreated(created, TTL_MS)
    expect(await c.until(taskId, ['completed'])).toMatchObject({ status: 'completed' })
    const createdAt = Date.parse(created['createdAt'] as string)
    // Still there before its TTL (the spec forbids expiring it early)...
    expect(Date.now()).toBeLessThan(createdAt + TTL_MS)
    expect((await c.get(taskId))['status']).toBe('completed')
    // ...and gone after it.
    await expect
      .poll(async () => (await c.rpc('tasks/get', { taskId })).error?.code, {
        timeout: TTL_MS * 3,
        interval: 100,
      })
      .toBe(-32602)
    expect(Date.now()).toBeGreaterThanOrEqual(createdAt + TTL_MS)
  })
})
