/**
 * Upstreams through the engine, as model code sees them: server-everything over stdio and over
 * Streamable HTTP, an upstream that crashes mid-call (TOOL_ERROR, then respawned) and one that
 * hangs (TOOL_TIMEOUT within the server's `timeoutMs`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SERVERS, testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { fixture, startEverythingHttp, type RunningServer } from '../upstream/helpers.js'

/**
 * Timeout of the hanging server's calls, far below the execution's 30 s wall clock. Not smaller:
 * the upstream also uses it to wait for `initialize`, and a cold node + SDK start takes a while.
 */
const HANG_TIMEOUT_MS = 2_500

describe('upstreams through engine.execute', () => {
  let http: RunningServer
  let rt: TestRuntime
  beforeAll(async () => {
    // server-everything binds all interfaces in this mode; acceptable only inside tests.
    http = await startEverythingHttp()
    rt = await testRuntime({
      config: {
        servers: {
          local: { command: process.execPath, args: [SERVERS.everything, 'stdio'] },
          remote: { url: http.url },
          crashy: fixture('crash'),
          stuck: { ...fixture('hang'), timeoutMs: HANG_TIMEOUT_MS },
        },
      },
    })
    // The catalogue lists once at start and re-lists only on tools/list_changed; on a loaded
    // machine the first connect can miss the short timeout, so list again until it is there.
    for (
      let i = 0;
      i < 3 && !rt.engine.listTools(rt.principal()).some((t) => t.server === 'stuck');
      i++
    ) {
      await rt.engine.refresh('stuck')
    }
  })
  afterAll(async () => {
    await rt?.close()
    await http?.stop()
  })

  const run = (code: string) => rt.engine.execute(rt.principal(), code)

  it('lists the tools of the stdio and the Streamable HTTP server alike', () => {
    const names = rt.engine.listTools(rt.principal()).map((t) => `${t.server}.${t.ident}`)
    for (const server of ['local', 'remote']) {
      expect(names).toContain(`${server}.get_sum`)
      expect(names).toContain(`${server}.get_structured_content`)
    }
    expect(rt.engine.health().upstreams.remote).toMatchObject({ quarantined: 0 })
  })

  it('calls both from one program, in parallel, with typed structured results', async () => {
    const result = await run(
      [
        'const [a, b] = await Promise.all([',
        '  tools.local.get_sum({ a: 2, b: 3 }),',
        '  tools.remote.get_sum({ a: 40, b: 2 }),',
        '])',
        "const weather = await tools.remote.get_structured_content({ location: 'Chicago' })",
        "const echo = await tools.local.echo({ message: 'over stdio' })",
        'return { a, b, conditions: typeof weather.conditions, echo }',
      ].join('\n'),
    )
    expect(result.error).toBeUndefined()
    expect(result.ok).toBe(true)
    expect(result.result).toMatchObject({ conditions: 'string', echo: 'Echo: over stdio' })
    // get-sum answers in prose ("The sum of 2 and 3 is 5."): the text arrives as it is.
    expect(String((result.result as { a: unknown }).a)).toContain('5')
    expect(String((result.result as { b: unknown }).b)).toContain('42')
    expect(result.calls.map((c) => `${c.tool}:${c.ok}`).sort()).toEqual([
      'local.echo:true',
      'local.get-sum:true',
      'remote.get-structured-content:true',
      'remote.get-sum:true',
    ])
  })

  it('turns an upstream that crashes mid-call into TOOL_ERROR, and the next execution works', async () => {
    const first = await run("return await tools.crashy.echo({ text: 'one' })")
    const pidBefore = /\(pid (\d+)\)$/.exec(String(first.result))?.[1]
    expect(pidBefore).toMatch(/^\d+$/)
    const crashed = await run(
      [
        "const before = await tools.crashy.echo({ text: 'one' })",
        'await tools.crashy.crash({})',
        'return before',
      ].join('\n'),
    )
    expect(crashed.ok).toBe(false)
    expect(crashed.error).toMatchObject({ code: 'TOOL_ERROR', line: 2 })
    expect(crashed.error?.message).toBe(
      'crashy.crash: upstream crashy closed the connection during tools/call crash',
    )
    // The crash's stderr (a host path) never reaches the model.
    expect(JSON.stringify(crashed)).not.toContain('/home/alice')

    const again = await run("return await tools.crashy.echo({ text: 'two' })")
    expect(again.error).toBeUndefined()
    expect(again.ok).toBe(true)
    const pidAfter = /^two \(pid (\d+)\)$/.exec(String(again.result))?.[1]
    expect(pidAfter).toMatch(/^\d+$/)
    expect(pidAfter).not.toBe(pidBefore) // a fresh process: the crashed one was respawned
  })

  it('answers TOOL_TIMEOUT within the server timeoutMs when an upstream hangs, and stays usable', async () => {
    const started = performance.now()
    const hung = await run(
      [
        'try {',
        '  await tools.stuck.hang({})',
        '} catch (e) {',
        '  return { code: e.code, message: e.message }',
        '}',
      ].join('\n'),
    )
    const elapsedMs = performance.now() - started
    expect(hung.ok).toBe(true)
    expect(hung.result).toEqual({
      code: 'TOOL_TIMEOUT',
      message: `stuck.hang: tools/call hang on upstream stuck did not answer within ${HANG_TIMEOUT_MS} ms`,
    })
    // Bounded by the server's timeout, not by the execution's 30 s wall clock.
    expect(elapsedMs).toBeLessThan(10_000)
    expect(hung.calls).toEqual([
      expect.objectContaining({ tool: 'stuck.hang', ok: false, code: 'TOOL_TIMEOUT' }),
    ])

    const uncaught = await run('await tools.stuck.hang({})')
    expect(uncaught.error).toMatchObject({ code: 'TOOL_TIMEOUT', line: 1 })

    const echo = await run("return await tools.stuck.echo({ text: 'still here' })")
    expect(echo).toMatchObject({ ok: true })
    expect(String(echo.result)).toMatch(/^still here/)
  })
})
