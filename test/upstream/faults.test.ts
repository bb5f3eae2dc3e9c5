/**
 * Upstream against misbehaving fixture servers: crash mid-call, hang, wedged process, garbage on
 * stdout, malformed results, JSON-RPC errors, unreachable commands, cancellation, list_changed.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { isSluiceError } from '../../src/errors.js'
import { Upstream, type UpstreamLogger } from '../../src/upstream/index.js'
import { clientInfo, textOf, eventually, fixture, tempDir } from './helpers.js'

async function failure(
  promise: Promise<unknown>,
): Promise<{ code: string; message: string; details?: unknown }> {
  try {
    await promise
  } catch (error) {
    if (!isSluiceError(error)) throw error
    return { code: error.code, message: error.message, details: error.details }
  }
  throw new Error('expected a failure')
}

function pidOf(result: { content: Array<{ type: string; [k: string]: unknown }> }): number {
  const text = textOf(result)
  return Number(/pid (\d+)/.exec(text)?.[1])
}

function cancelLines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

const dir = tempDir('sluice-faults-')
afterAll(() => dir.remove())

describe('Upstream with a server that crashes mid-call', () => {
  const warnings: string[] = []
  const logger: UpstreamLogger = { warn: (_fields, message) => warnings.push(message) }
  const upstream = new Upstream('crashy', fixture('crash'), {
    callTimeoutMs: 10_000,
    clientInfo,
    logger,
  })
  afterAll(() => upstream.close())

  it('fails the call with TOOL_ERROR, then respawns on the next call', async () => {
    const before = await upstream.callTool('echo', { text: 'one' })
    const err = await failure(upstream.callTool('crash', {}))
    expect(err).toMatchObject({
      code: 'TOOL_ERROR',
      message: 'upstream crashy closed the connection during tools/call crash',
    })
    const after = await upstream.callTool('echo', { text: 'two' })
    expect(textOf(after)).toMatch(/^two/)
    expect(pidOf(after)).not.toBe(pidOf(before))
    expect(upstream.health()).toMatchObject({
      state: 'ready',
      restarts: 1,
      lastError: 'the upstream closed the connection',
    })
    expect(warnings).toContain('upstream connection closed unexpectedly')
  })

  it('keeps the stderr tail for operators but never in the error message', async () => {
    expect(upstream.stderrTail()).toContain('crashing on purpose')
    const err = await failure(upstream.callTool('crash', {}))
    expect(err.message).not.toContain('/home/alice')
  })

  it('keeps only the newest stderrBytes of stderr', async () => {
    const small = new Upstream('small', fixture('crash'), {
      callTimeoutMs: 10_000,
      clientInfo,
      stderrBytes: 16,
    })
    try {
      await failure(small.callTool('crash', {}))
      await eventually(() => small.stderrTail().endsWith('\n'))
      expect(small.stderrTail()).toBe(
        'crashing on purpose; secret path /home/alice/.ssh/id_rsa\n'.slice(-16),
      )
    } finally {
      await small.close()
    }
  })
})

describe('Upstream with a server that hangs', () => {
  const cancelLog = join(dir.path, 'hang-cancel.jsonl')
  const upstream = new Upstream('hangs', fixture('hang', { CANCEL_LOG: cancelLog }), {
    callTimeoutMs: 10_000,
    clientInfo,
  })
  afterAll(() => upstream.close())

  it('fails with TOOL_TIMEOUT at the timeout and sends notifications/cancelled upstream', async () => {
    await upstream.connect() // the timeout also bounds a lazy connect; keep spawn time out of it
    const err = await failure(upstream.callTool('hang', {}, { timeoutMs: 300 }))
    expect(err).toEqual({
      code: 'TOOL_TIMEOUT',
      message: 'tools/call hang on upstream hangs did not answer within 300 ms',
      details: { server: 'hangs', timeoutMs: 300 },
    })
    await eventually(() => cancelLines(cancelLog).length === 1)
    expect(cancelLines(cancelLog)[0]).toMatchObject({ tool: 'hang' })
  })

  it('keeps the session when the server still answers a ping', async () => {
    const pid = pidOf(await upstream.callTool('echo', { text: 'x' }))
    await failure(upstream.callTool('hang', {}, { timeoutMs: 200 }))
    // The timeout starts a ping; the session stays once the server has answered it.
    expect(upstream.health().probing).toBe(true)
    await eventually(() => !upstream.health().probing)
    expect(upstream.health()).toMatchObject({ state: 'ready', probing: false })
    expect(pidOf(await upstream.callTool('echo', { text: 'y' }))).toBe(pid)
  })

  it('restarts a wedged server that cannot answer a ping after a timeout', async () => {
    const wedgy = new Upstream('wedgy', fixture('hang', { WEDGE_MS: '20000' }), {
      callTimeoutMs: 10_000,
      clientInfo,
      probeTimeoutMs: 200,
    })
    try {
      const pid = pidOf(await wedgy.callTool('echo', { text: 'x' }))
      const err = await failure(wedgy.callTool('wedge', {}, { timeoutMs: 200 }))
      expect(err.code).toBe('TOOL_TIMEOUT')
      await eventually(() => wedgy.health().state !== 'ready')
      expect(wedgy.health().lastError).toBe('no answer to ping after a timeout')
      const again = await wedgy.callTool('echo', { text: 'y' })
      expect(pidOf(again)).not.toBe(pid)
    } finally {
      await wedgy.close()
    }
  })
})

describe('Upstream cancellation', () => {
  const cancelLog = join(dir.path, 'slow-cancel.jsonl')
  const upstream = new Upstream('slow', fixture('slow', { CANCEL_LOG: cancelLog }), {
    callTimeoutMs: 10_000,
    clientInfo,
  })
  afterAll(() => upstream.close())

  it('fails with CANCELLED when the signal aborts, and the server sees notifications/cancelled', async () => {
    const controller = new AbortController()
    const call = upstream.callTool(
      'slow',
      { ms: 5_000, tag: 'abort-me' },
      { signal: controller.signal },
    )
    await upstream.connect()
    setTimeout(() => controller.abort(), 100)
    expect(await failure(call)).toEqual({
      code: 'CANCELLED',
      message: 'tools/call slow on upstream slow was cancelled',
      details: undefined,
    })
    await eventually(() => cancelLines(cancelLog).some((l) => l.tag === 'abort-me'))
  })

  it('fails at once for a signal that is already aborted, without calling upstream', async () => {
    const err = await failure(
      upstream.callTool('slow', { ms: 10, tag: 'never' }, { signal: AbortSignal.abort() }),
    )
    expect(err.code).toBe('CANCELLED')
  })

  it('lets a call finish just under its timeout', async () => {
    const result = await upstream.callTool('slow', { ms: 50 }, { timeoutMs: 2_000 })
    expect(result.content).toEqual([{ type: 'text', text: 'waited 50 ms' }])
  })
})

describe('Upstream with a server that answers garbage', () => {
  const upstream = new Upstream('junk', fixture('garbage', { BANNER: '1' }), {
    callTimeoutMs: 5_000,
    clientInfo,
  })
  afterAll(() => upstream.close())

  it('tolerates non-JSON output before the session is up', async () => {
    const result = await upstream.callTool('echo', { text: 'hi' })
    expect(result.isError).toBeFalsy()
  })

  it('fails a call with TOOL_ERROR on a non-JSON line and recovers on the next call', async () => {
    const pid = pidOf(await upstream.callTool('echo', { text: 'a' }))
    const err = await failure(upstream.callTool('garbage', {}))
    expect(err).toMatchObject({
      code: 'TOOL_ERROR',
      message: 'upstream junk sent a malformed message (not JSON-RPC) during tools/call garbage',
    })
    const after = await upstream.callTool('echo', { text: 'b' })
    expect(pidOf(after)).not.toBe(pid)
  })

  it('fails with TOOL_ERROR on a result that is not a CallToolResult, keeping the session', async () => {
    const pid = pidOf(await upstream.callTool('echo', { text: 'a' }))
    const err = await failure(upstream.callTool('malformed', {}))
    expect(err).toMatchObject({
      code: 'TOOL_ERROR',
      message: 'upstream junk returned a malformed result for tools/call malformed',
    })
    expect(pidOf(await upstream.callTool('echo', { text: 'b' }))).toBe(pid)
  })
})

describe('Upstream with a server that answers JSON-RPC errors (SDK v2 style)', () => {
  const upstream = new Upstream('strict', fixture('strict-errors'), {
    callTimeoutMs: 5_000,
    clientInfo,
  })
  afterAll(() => upstream.close())

  it('maps -32602 for an unknown tool to TOOL_ERROR "invalid params"', async () => {
    expect(await failure(upstream.callTool('nope', {}))).toEqual({
      code: 'TOOL_ERROR',
      message: 'invalid params: Tool nope not found',
      details: { server: 'strict', jsonRpcCode: -32602 },
    })
  })

  it('maps -32602 for bad arguments the same way', async () => {
    const err = await failure(upstream.callTool('add', { a: 'x', b: 1 }))
    expect(err).toMatchObject({
      code: 'TOOL_ERROR',
      message: 'invalid params: Invalid arguments for tool add: a and b must be numbers',
    })
    expect((await upstream.callTool('add', { a: 1, b: 2 })).content).toEqual([
      { type: 'text', text: '3' },
    ])
  })

  it('sanitises other JSON-RPC errors: one line, no host paths', async () => {
    expect(await failure(upstream.callTool('fail', {}))).toEqual({
      code: 'TOOL_ERROR',
      message: 'upstream strict error -32603: database <path> is locked',
      details: { server: 'strict', jsonRpcCode: -32603 },
    })
  })
})

describe('Upstream that cannot start', () => {
  it('fails with UPSTREAM_UNAVAILABLE, retries at once, then backs off and fails fast', async () => {
    const upstream = new Upstream(
      'ghost',
      { command: '/nonexistent/sluice-no-such-binary', args: [], env: {} },
      {
        callTimeoutMs: 5_000,
        clientInfo,
        initialBackoffMs: 60_000,
        maxBackoffMs: 60_000,
        random: () => 0.5,
      },
    )
    try {
      const first = await failure(upstream.callTool('x', {}))
      expect(first).toMatchObject({
        code: 'UPSTREAM_UNAVAILABLE',
        message: 'upstream ghost is unavailable: spawn <path> ENOENT',
      })
      expect(upstream.health()).toMatchObject({ state: 'idle', restarts: 0 })
      expect(upstream.health().retryInMs).toBeUndefined()
      const second = await failure(upstream.callTool('x', {}))
      expect(second.code).toBe('UPSTREAM_UNAVAILABLE')
      expect(upstream.health()).toMatchObject({ state: 'backoff', restarts: 1 })
      // Jitter pinned at 0.5: the wait is 45 s (between half and all of the 60 s base).
      const retryInMs = upstream.health().retryInMs
      expect(retryInMs).toBeGreaterThan(40_000)
      expect(retryInMs).toBeLessThanOrEqual(45_000)
      const third = await failure(upstream.callTool('x', {}))
      expect(third.message).toMatch(
        /^upstream ghost is unavailable, next attempt in \d+ ms: spawn <path> ENOENT$/,
      )
      expect(upstream.health().restarts).toBe(1)
    } finally {
      await upstream.close()
    }
    expect(upstream.health().state).toBe('closed')
    expect(await failure(upstream.callTool('x', {}))).toMatchObject({
      code: 'UPSTREAM_UNAVAILABLE',
      message: 'upstream ghost is closed',
    })
  })
})

describe('Upstream closed while its server starts', () => {
  it('stops a server that never answers initialize at once, and reports no failure', async () => {
    const warnings: string[] = []
    // Ignores the end of its stdin too: only a signal stops it.
    const upstream = new Upstream(
      'mute',
      { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'], env: {} },
      {
        callTimeoutMs: 5_000,
        connectTimeoutMs: 60_000,
        clientInfo,
        logger: { warn: (_fields, message) => warnings.push(message) },
      },
    )
    const connecting = failure(upstream.connect())
    await eventually(() => upstream.health().state === 'connecting')
    const started = Date.now()
    await upstream.close()
    // The SDK gives a child 2 s after the end of its stdin before SIGTERM; never the 60 s.
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(await connecting).toMatchObject({
      code: 'UPSTREAM_UNAVAILABLE',
      message: 'upstream mute is closed',
    })
    expect(warnings).toEqual([])
    expect(upstream.health().state).toBe('closed')
  })
})

describe('Upstream tools/list_changed', () => {
  it('calls onToolsChanged and the next listTools shows the new definition', async () => {
    let changes = 0
    const upstream = new Upstream('rug', fixture('rugpull'), {
      callTimeoutMs: 5_000,
      clientInfo,
      onToolsChanged: () => changes++,
    })
    try {
      const before = await upstream.listTools()
      expect(before.find((t) => t.name === 'get_weather')?.description).toBe(
        'Get the weather for a city',
      )
      await upstream.callTool('mutate', {})
      await eventually(() => changes === 1)
      const after = await upstream.listTools()
      expect(after.find((t) => t.name === 'get_weather')?.description).toContain('<IMPORTANT>')
    } finally {
      await upstream.close()
    }
  })
})
