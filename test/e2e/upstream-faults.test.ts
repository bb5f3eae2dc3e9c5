/**
 * Issue 16, "upstream faults survived": one `sluice serve` (a child process, real HTTP on
 * 127.0.0.1) in front of a healthy server (`rec`) and six faulty fixture servers: one that
 * crashes mid-call, one that hangs, one that is slow, one that writes garbage on stdout, one that
 * exits after N calls and stays down for a while, and one whose tool changes at runtime (pinned
 * by `sluice lock`). Each case checks that the faulty call fails with its code and exact message
 * within a bound, that no execution is left running, that the gateway process stays up, and that
 * `rec` answers in the same execution and in the next one.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, SERVERS } from '../helpers/runtime.js'
import { FIXTURES } from '../upstream/helpers.js'
import { connect, execute, type Execution } from './helpers.js'

const MAIN = join(ROOT, 'dist', 'src', 'main.js')
/** The hanging server's `timeoutMs`, far below the execution's 30 s wall clock. */
const HANG_TIMEOUT_MS = 1_500
/** The slow server's `timeoutMs`. */
const SLOW_TIMEOUT_MS = 2_000
/** `tick` calls the exit-after server answers before it exits. */
const EXIT_AFTER = 2

interface Readyz {
  status: number
  body: {
    status: string
    upstreams: Record<string, { state: string; restarts?: number; retryInMs?: number }>
    executions: { running: number; queued: number; draining: boolean }
  }
}

let dir: string
let server: ChildProcess
let exited: Promise<number | null>
let url: string
let base: string
let stderr = ''
let client: Client
const downFile = () => join(dir, 'flaky.down')
const hangLog = () => join(dir, 'hang-cancel.jsonl')
const slowLog = () => join(dir, 'slow-cancel.jsonl')

const stdio = (script: string, extra: Record<string, unknown> = {}) => ({
  command: process.execPath,
  args: [script],
  ...extra,
})

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-upstream-faults-'))
  const config = {
    servers: {
      rec: stdio(SERVERS.recording, { env: { RECORD_FILE: join(dir, 'calls.jsonl') } }),
      crashy: stdio(join(FIXTURES, 'crash.mjs')),
      stuck: stdio(join(FIXTURES, 'hang.mjs'), {
        env: { CANCEL_LOG: hangLog() },
        timeoutMs: HANG_TIMEOUT_MS,
      }),
      slow: stdio(join(FIXTURES, 'slow.mjs'), {
        env: { CANCEL_LOG: slowLog() },
        timeoutMs: SLOW_TIMEOUT_MS,
      }),
      junk: stdio(join(FIXTURES, 'garbage.mjs')),
      flaky: stdio(join(FIXTURES, 'exit-after.mjs'), {
        env: { EXIT_AFTER: String(EXIT_AFTER), DOWN_FILE: downFile() },
      }),
      weather: stdio(join(FIXTURES, 'rugpull.mjs')),
    },
    // A call that none of the faults answers fails at 10 s, far below the test's own timeout.
    limits: { callTimeoutMs: 10_000 },
    lock: { file: 'servers.lock.json' },
    sandbox: { workers: 2 },
  }
  const file = join(dir, 'sluice.yaml')
  writeFileSync(file, JSON.stringify(config, null, 2))
  // Every tool as the servers list it now: the rug pull below is a change against these pins.
  const lock = spawnSync(process.execPath, [MAIN, 'lock', '--config', file], { encoding: 'utf8' })
  expect(lock.status, lock.stderr).toBe(0)

  server = spawn(
    process.execPath,
    [MAIN, 'serve', '--config', file, '--port', '0', '--insecure-dev'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)))
  url = await new Promise<string>((resolve, reject) => {
    server.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
      const m = /sluice gateway listening on (\S+)/.exec(stderr)
      if (m) resolve(m[1]!)
    })
    void exited.then((code) =>
      reject(new Error(`sluice serve exited with ${String(code)}:\n${stderr}`)),
    )
  })
  base = new URL(url).origin
  client = await connect(url)
})

afterAll(async () => {
  await client?.close().catch(() => undefined)
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM')
    await exited
  }
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const run = (lines: string[]): Promise<Execution> => execute(client, lines.join('\n'))

async function readyz(): Promise<Readyz> {
  const res = await fetch(`${base}/readyz`)
  return { status: res.status, body: (await res.json()) as Readyz['body'] }
}

/** The value of `metric{server="…"}` as `/metrics` reports it now. */
async function series(
  metric: 'sluice_upstream_up' | 'sluice_upstream_restarts_total',
  name: string,
): Promise<number | undefined> {
  const text = await (await fetch(`${base}/metrics`)).text()
  const m = new RegExp(`^${metric}\\{server="${name}"\\} (\\S+)$`, 'm').exec(text)
  return m ? Number(m[1]) : undefined
}

/** Polls `probe` every 20 ms until it returns a value; the test's own timeout bounds it. */
async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    await new Promise((r) => setTimeout(r, 20))
  }
}

function cancelLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

/**
 * The lines of an execution that calls `rec`, then the faulty `call` (its error caught as
 * `{ code, message }`), then `rec` again, and returns all three.
 */
function sandwich(call: string, id: string): string[] {
  return [
    `const before = await tools.rec.read_item({ id: '${id}-before' })`,
    'let fault',
    'try {',
    `  fault = { value: await ${call} }`,
    '} catch (e) {',
    '  fault = { code: e.code, message: e.message }',
    '}',
    `const after = await tools.rec.read_item({ id: '${id}-after' })`,
    'return { before: before.title, fault, after: after.title }',
  ]
}

/** What `sandwich` returns when the healthy server answered both times. */
function sandwiched(id: string, fault: Record<string, unknown>) {
  return { ok: true, result: { before: `Item ${id}-before`, fault, after: `Item ${id}-after` } }
}

/** The gateway is up, nothing is left running, and `rec` answers a fresh execution. */
async function survived(): Promise<void> {
  expect(server.exitCode).toBeNull()
  expect(server.signalCode).toBeNull()
  expect((await fetch(`${base}/healthz`)).status).toBe(200)
  const ready = await readyz()
  expect(ready.status).toBe(200)
  expect(ready.body.executions).toEqual({ running: 0, queued: 0, draining: false })
  expect(ready.body.upstreams.rec?.state).toBe('ready')
  const next = await run(["return (await tools.rec.read_item({ id: 'next' })).title"])
  expect(next).toMatchObject({ ok: true, result: 'Item next' })
}

const pidOf = (text: unknown): string => /\(pid (\d+)\)$/.exec(String(text))?.[1] ?? 'none'

describe('upstream faults through one sluice serve', () => {
  it('crash mid-call: TOOL_ERROR at once, the server is respawned for the next execution', async () => {
    const first = await run(["return await tools.crashy.echo({ text: 'one' })"])
    expect(first).toMatchObject({ ok: true })
    const pid = pidOf(first.result)
    expect(pid).toMatch(/^\d+$/)

    const started = performance.now()
    const crashed = await run(sandwich('tools.crashy.crash({})', 'crash'))
    expect(performance.now() - started).toBeLessThan(5_000) // no timeout was needed
    expect(crashed).toMatchObject(
      sandwiched('crash', {
        code: 'TOOL_ERROR',
        message: 'crashy.crash: upstream crashy closed the connection during tools/call crash',
      }),
    )
    // The crash's stderr (a host path) never reaches the model; the operator log has it.
    expect(JSON.stringify(crashed)).not.toContain('/home/alice')
    const logged = await until(async () =>
      stderr
        .split('\n')
        .filter((l) => l.includes('"msg":"upstream connection closed unexpectedly"'))
        .map((l) => JSON.parse(l) as { level: string; server: string; stderr: string })
        .find((l) => l.server === 'crashy'),
    )
    expect(logged).toMatchObject({
      level: 'warn',
      stderr: expect.stringContaining('crashing on purpose; secret path /home/alice/.ssh/id_rsa'),
    })

    await survived()
    const again = await run(["return await tools.crashy.echo({ text: 'two' })"])
    expect(again).toMatchObject({ ok: true, result: expect.stringMatching(/^two \(pid \d+\)$/) })
    expect(pidOf(again.result)).not.toBe(pid)
    expect((await readyz()).body.upstreams.crashy).toEqual({ state: 'ready', restarts: 1 })
  })

  it('hang: TOOL_TIMEOUT at the server timeoutMs, cancelled upstream; nothing else waits for it', async () => {
    const started = performance.now()
    let settled = false
    const hung = run(sandwich('tools.stuck.hang({})', 'hang')).finally(() => {
      settled = true
    })
    await until(async () => ((await readyz()).body.executions.running === 1 ? true : undefined))
    // Another execution runs and ends while the hanging one still waits.
    const meanwhile = await run(["return (await tools.rec.read_item({ id: 'meanwhile' })).title"])
    expect(meanwhile).toMatchObject({ ok: true, result: 'Item meanwhile' })
    expect(settled).toBe(false)

    const result = await hung
    const elapsedMs = performance.now() - started
    expect(result).toMatchObject(
      sandwiched('hang', {
        code: 'TOOL_TIMEOUT',
        message: `stuck.hang: tools/call hang on upstream stuck did not answer within ${HANG_TIMEOUT_MS} ms`,
      }),
    )
    // Bounded by the server's timeoutMs, not by limits.callTimeoutMs (10 s) or the 30 s wall clock.
    expect(elapsedMs).toBeGreaterThanOrEqual(HANG_TIMEOUT_MS)
    expect(elapsedMs).toBeLessThan(HANG_TIMEOUT_MS + 3_000)
    await until(async () => (cancelLines(hangLog()).length === 1 ? true : undefined))
    expect(cancelLines(hangLog())[0]).toMatchObject({ tool: 'hang' })

    await survived()
    // The server still answers a ping, so its session stays and its other tool works.
    const echo = await run(["return await tools.stuck.echo({ text: 'still here' })"])
    expect(echo).toMatchObject({
      ok: true,
      result: expect.stringMatching(/^still here \(pid \d+\)$/),
    })
    expect((await readyz()).body.upstreams.stuck).toEqual({ state: 'ready', restarts: 0 })
  })

  it('slow: a call under timeoutMs answers, one over it is TOOL_TIMEOUT; the fast server answers first', async () => {
    const both = await run([
      'const order = []',
      'const [slow, fast] = await Promise.all([',
      "  tools.slow.slow({ ms: 800, tag: 'under' }).then((r) => { order.push('slow'); return r }),",
      "  tools.rec.read_item({ id: 'fast' }).then((r) => { order.push('rec'); return r.title }),",
      '])',
      'return { slow, fast, order }',
    ])
    expect(both).toMatchObject({
      ok: true,
      result: { slow: 'waited 800 ms', fast: 'Item fast', order: ['rec', 'slow'] },
    })

    const started = performance.now()
    const over = await run(sandwich("tools.slow.slow({ ms: 20000, tag: 'over' })", 'slow'))
    const elapsedMs = performance.now() - started
    expect(over).toMatchObject(
      sandwiched('slow', {
        code: 'TOOL_TIMEOUT',
        message: `slow.slow: tools/call slow on upstream slow did not answer within ${SLOW_TIMEOUT_MS} ms`,
      }),
    )
    expect(elapsedMs).toBeGreaterThanOrEqual(SLOW_TIMEOUT_MS)
    expect(elapsedMs).toBeLessThan(SLOW_TIMEOUT_MS + 3_000)
    await until(async () =>
      cancelLines(slowLog()).some((l) => l.tag === 'over') ? true : undefined,
    )
    expect(cancelLines(slowLog()).map((l) => l.tag)).toEqual(['over'])

    await survived()
    const again = await run(["return await tools.slow.slow({ ms: 10, tag: 'again' })"])
    expect(again).toMatchObject({ ok: true, result: 'waited 10 ms' })
    expect((await readyz()).body.upstreams.slow).toEqual({ state: 'ready', restarts: 0 })
  })

  it('garbage on stdout: TOOL_ERROR at once, the session is dropped and the server respawned', async () => {
    const first = await run(["return await tools.junk.echo({ text: 'a' })"])
    const pid = pidOf(first.result)
    expect(pid).toMatch(/^\d+$/)

    const started = performance.now()
    const garbled = await run(sandwich('tools.junk.garbage({})', 'garbage'))
    expect(performance.now() - started).toBeLessThan(5_000)
    expect(garbled).toMatchObject(
      sandwiched('garbage', {
        code: 'TOOL_ERROR',
        message:
          'junk.garbage: upstream junk sent a malformed message (not JSON-RPC) during tools/call garbage',
      }),
    )

    await survived()
    const again = await run(["return await tools.junk.echo({ text: 'b' })"])
    expect(again).toMatchObject({ ok: true, result: expect.stringMatching(/^b \(pid \d+\)$/) })
    expect(pidOf(again.result)).not.toBe(pid)
    expect((await readyz()).body.upstreams.junk).toEqual({ state: 'ready', restarts: 1 })
  })

  it('exit after N calls: later calls reconnect with backoff, seen in /readyz and /metrics', async () => {
    expect((await readyz()).body.upstreams.flaky).toEqual({ state: 'ready', restarts: 0 })
    expect(await series('sluice_upstream_up', 'flaky')).toBe(1)
    expect(await series('sluice_upstream_restarts_total', 'flaky')).toBe(0)
    // From the next start on, the server fails at once, until this file is gone.
    writeFileSync(downFile(), '')
    const lines = Array.from({ length: EXIT_AFTER }, () => 'ticks.push(await tools.flaky.tick({}))')
    const served = await run(['const ticks = []', ...lines, 'return ticks'])
    expect(served.ok).toBe(true)
    const ticks = served.result as string[]
    const pid = pidOf(ticks[0])
    expect(ticks).toEqual(
      Array.from({ length: EXIT_AFTER }, (_, i) => `tick ${i + 1} of ${EXIT_AFTER} (pid ${pid})`),
    )

    // The process exits after its last answer: the upstream is down, the gateway stays ready.
    const down = await until(async () => {
      const r = await readyz()
      return r.body.upstreams.flaky?.state === 'ready' ? undefined : r
    })
    expect(down.status).toBe(200)
    // The first reconnect after a failure waits for nothing: the next call tries at once.
    expect(down.body.upstreams.flaky).toEqual({ state: 'idle', restarts: 0 })
    expect(await series('sluice_upstream_up', 'flaky')).toBe(0)
    expect(await series('sluice_upstream_up', 'rec')).toBe(1)

    // While it stays down, a call either tries to start it (and fails), or comes during the wait
    // that follows a failed attempt and fails at once, saying how long the wait still is. The
    // wait is in /readyz too. Go on until both have been seen.
    const message =
      /^flaky\.tick: upstream flaky is unavailable(, next attempt in (\d+) ms)?: Connection closed$/
    let attempts = 0
    let failedFast = false
    let waiting: Readyz['body']['upstreams'][string] | undefined
    while (!failedFast || waiting === undefined) {
      const attempt = await run(sandwich('tools.flaky.tick({})', 'down'))
      expect(attempt).toMatchObject(
        sandwiched('down', {
          code: 'UPSTREAM_UNAVAILABLE',
          message: expect.stringMatching(message),
        }),
      )
      const text = (attempt.result as { fault: { message: string } }).fault.message
      const fast = message.exec(text)![2]
      if (fast === undefined) attempts++
      else {
        failedFast = true
        expect(Number(fast)).toBeGreaterThan(0)
      }
      const r = await readyz()
      expect(r.status).toBe(200)
      const flaky = r.body.upstreams.flaky!
      expect(flaky.state === 'backoff' || flaky.state === 'idle').toBe(true)
      expect(flaky.restarts).toBe(attempts)
      if (flaky.state === 'backoff') {
        expect(flaky.retryInMs).toBeGreaterThan(0)
        expect(flaky.retryInMs).toBeLessThanOrEqual(5_000)
        waiting = flaky
      } else expect(flaky.retryInMs).toBeUndefined()
      expect(await series('sluice_upstream_up', 'flaky')).toBe(0)
      expect(await series('sluice_upstream_restarts_total', 'flaky')).toBe(attempts)
    }
    expect(attempts).toBeGreaterThanOrEqual(1)
    await survived()

    // Back up: once the wait is over, the next call starts the server again.
    unlinkSync(downFile())
    await until(async () =>
      (await readyz()).body.upstreams.flaky?.state === 'backoff' ? undefined : true,
    )
    const back = await run(sandwich('tools.flaky.tick({})', 'back'))
    expect(back).toMatchObject(
      sandwiched('back', {
        value: expect.stringMatching(new RegExp(`^tick 1 of ${EXIT_AFTER} \\(pid \\d+\\)$`)),
      }),
    )
    expect(pidOf((back.result as { fault: { value: string } }).fault.value)).not.toBe(pid)
    expect((await readyz()).body.upstreams.flaky).toEqual({
      state: 'ready',
      restarts: attempts + 1,
    })
    expect(await series('sluice_upstream_up', 'flaky')).toBe(1)
    expect(await series('sluice_upstream_restarts_total', 'flaky')).toBe(attempts + 1)
    await survived()
  })

  it('tool list changed: the changed tool is quarantined, the rest of the server and the others work', async () => {
    const before = await run([
      "const w = await tools.weather.get_weather({ city: 'Oslo' })",
      "const r = await tools.rec.read_item({ id: 'w' })",
      'return [w, r.title]',
    ])
    expect(before).toMatchObject({ ok: true, result: ['Sunny in Oslo', 'Item w'] })
    const description = async () =>
      (await client.listTools()).tools.find((t) => t.name === 'execute_code')?.description ?? ''
    expect(await description()).toMatch(/get_weather\(args/)

    const mutated = await run(['return await tools.weather.mutate({})'])
    expect(mutated).toMatchObject({ ok: true, result: 'mutated' })
    // notifications/tools/list_changed → re-list → quarantine: the declaration leaves the listing.
    await until(async () => (/get_weather\(args/.test(await description()) ? undefined : true))

    // In one execution: the other server, the quarantined tool, the unchanged tool of the same
    // server, the other server again.
    const quarantined = await run([
      "const before = await tools.rec.read_item({ id: 'rug-before' })",
      'let fault',
      'try {',
      "  fault = { value: await tools.weather.get_weather({ city: 'Oslo' }) }",
      '} catch (e) {',
      '  fault = { code: e.code, message: e.message }',
      '}',
      'const same = await tools.weather.mutate({})',
      "const after = await tools.rec.read_item({ id: 'rug-after' })",
      'return { before: before.title, fault, same, after: after.title }',
    ])
    expect(quarantined).toMatchObject({
      ok: true,
      result: {
        before: 'Item rug-before',
        fault: {
          code: 'QUARANTINED',
          message:
            'weather.get_weather changed since it was pinned and is quarantined until it is approved again (sluice lock)',
        },
        same: 'mutated',
        after: 'Item rug-after',
      },
    })
    // And in the next execution.
    const unchanged = await run(sandwich('tools.weather.mutate({})', 'same'))
    expect(unchanged).toMatchObject(sandwiched('same', { value: 'mutated' }))
    await survived()
    expect((await readyz()).body.upstreams.weather).toEqual({ state: 'ready', restarts: 0 })
  })

  it('after every fault, every server but the one that is quarantined answers in one execution', async () => {
    const all = await run([
      'return await Promise.all([',
      "  tools.rec.read_item({ id: 'all' }).then((r) => r.title),",
      "  tools.crashy.echo({ text: 'c' }),",
      "  tools.stuck.echo({ text: 's' }),",
      '  tools.slow.slow({ ms: 1 }),',
      "  tools.junk.echo({ text: 'j' }),",
      '  tools.flaky.tick({}),',
      '  tools.weather.mutate({}),',
      '])',
    ])
    expect(all.ok).toBe(true)
    expect((all.result as string[]).map((t) => t.replace(/ \(pid \d+\)$/, ''))).toEqual([
      'Item all',
      'c',
      's',
      'waited 1 ms',
      'j',
      `tick 2 of ${EXIT_AFTER}`,
      'mutated',
    ])
    await survived()
    // No error-level line from the gateway (pino's 50 and up, or the operator log's "error").
    expect(stderr).not.toMatch(/"level":(5\d|6\d|"error")/)
  })
})
