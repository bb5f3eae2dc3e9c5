/**
 * Upstream progress (src/upstream/upstream.ts): a call given `onProgress` sends a progress token
 * and gets every notification the real `server-everything` sends for it, over stdio and
 * Streamable HTTP, the last one included; progress restarts the call's timeout up to
 * `maxTotalMs`, and the deadline arithmetic at N and N+1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Upstream, type UpstreamProgress } from '../../src/upstream/index.js'
import { nextDeadline, totalMs } from '../../src/upstream/upstream.js'
import {
  bin,
  clientInfo,
  fixture,
  startEverythingHttp,
  textOf,
  type RunningServer,
} from './helpers.js'

const TOOL = 'trigger-long-running-operation'

describe('the deadline of a call that reports progress', () => {
  it('is a full timeout away while more than a timeout of the total is left (N + 1), the total at N', () => {
    // 1000 ms timeout, 5000 ms total: at 3999 ms 1001 ms are left, at 4000 ms exactly 1000.
    expect(nextDeadline(1000, 5000, 3999)).toEqual({ inMs: 1000, reason: 'timeout' })
    expect(nextDeadline(1000, 5000, 4000)).toEqual({ inMs: 1000, reason: 'total' })
    expect(nextDeadline(1000, 5000, 4500)).toEqual({ inMs: 500, reason: 'total' })
    expect(nextDeadline(1000, 5000, 5200)).toEqual({ inMs: 0, reason: 'total' })
  })

  it('never shortens a call: a total below the timeout is the timeout', () => {
    expect(totalMs(1000, 5000)).toBe(5000)
    expect(totalMs(1000, 999)).toBe(1000)
    expect(totalMs(1000, undefined)).toBe(1000)
  })
})

function suite(
  name: string,
  make: () => Promise<{ upstream: Upstream; stop?: () => Promise<void> }>,
) {
  describe(`progress from server-everything over ${name}`, () => {
    let upstream: Upstream
    let stop: (() => Promise<void>) | undefined
    beforeAll(async () => {
      ;({ upstream, stop } = await make())
    }, 30_000)
    afterAll(async () => {
      await upstream?.close()
      await stop?.()
    })

    it('delivers every notification of the call, the last one (sent just before the answer) included', async () => {
      for (let run = 0; run < 5; run++) {
        const got: UpstreamProgress[] = []
        const result = await upstream.callTool(
          TOOL,
          { duration: 0.15, steps: 3 },
          { onProgress: (p) => got.push(p) },
        )
        expect(textOf(result)).toBe(
          'Long running operation completed. Duration: 0.15 seconds, Steps: 3.',
        )
        expect(got).toEqual([
          { progress: 1, total: 3 },
          { progress: 2, total: 3 },
          { progress: 3, total: 3 },
        ])
      }
    })

    it('restarts the timeout on progress: a 1.2 s call reporting every 200 ms finishes under a 500 ms timeout', async () => {
      const got: UpstreamProgress[] = []
      const result = await upstream.callTool(
        TOOL,
        { duration: 1.2, steps: 6 },
        { timeoutMs: 500, maxTotalMs: 10_000, onProgress: (p) => got.push(p) },
      )
      expect(textOf(result)).toContain('Steps: 6.')
      expect(got).toHaveLength(6)
    })

    it('without onProgress the same call times out: no token is sent, nothing restarts the timeout', async () => {
      await expect(
        upstream.callTool(TOOL, { duration: 1.2, steps: 6 }, { timeoutMs: 500 }),
      ).rejects.toMatchObject({
        code: 'TOOL_TIMEOUT',
        message: `tools/call ${TOOL} on upstream everything did not answer within 500 ms`,
      })
    })

    it('stops at maxTotalMs however much progress comes, and names both limits', async () => {
      const started = performance.now()
      await expect(
        upstream.callTool(
          TOOL,
          { duration: 3, steps: 15 },
          { timeoutMs: 500, maxTotalMs: 1_000, onProgress: () => {} },
        ),
      ).rejects.toMatchObject({
        code: 'TOOL_TIMEOUT',
        message: `tools/call ${TOOL} on upstream everything reported progress but did not finish within 1000 ms, the most a call may run`,
        details: { server: 'everything', timeoutMs: 500, maxTotalMs: 1_000 },
      })
      // libuv keeps its loop clock in whole milliseconds, so a 1000 ms timer may fire up to
      // 1 ms early by performance.now().
      expect(performance.now() - started).toBeGreaterThanOrEqual(999)
    })
  })
}

suite('stdio', async () => ({
  upstream: new Upstream('everything', bin('mcp-server-everything'), {
    callTimeoutMs: 20_000,
    clientInfo,
  }),
}))

suite('Streamable HTTP', async () => {
  const server: RunningServer = await startEverythingHttp()
  return {
    upstream: new Upstream(
      'everything',
      { type: 'http', url: server.url, headers: {} },
      { callTimeoutMs: 20_000, clientInfo },
    ),
    stop: server.stop,
  }
})

describe('a call that reported progress, then went silent', () => {
  const slow = new Upstream('slow', fixture('slow'), { callTimeoutMs: 20_000, clientInfo })
  // Connected first: the timeout of a call also covers connecting.
  beforeAll(() => slow.listTools(), 20_000)
  afterAll(() => slow.close())

  it('times out a whole timeout after its last progress, and says that progress came', async () => {
    const got: UpstreamProgress[] = []
    const started = performance.now()
    await expect(
      slow.callTool(
        'slow',
        { ms: 5_000, progressAtMs: [100, 400] },
        { timeoutMs: 500, maxTotalMs: 10_000, onProgress: (p) => got.push(p) },
      ),
    ).rejects.toMatchObject({
      code: 'TOOL_TIMEOUT',
      message: 'tools/call slow on upstream slow sent neither progress nor its answer for 500 ms',
    })
    // The last progress at ~400 ms moved the deadline to ~900 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(900)
    expect(got).toEqual([{ progress: 1 }, { progress: 2 }])
  })
})
