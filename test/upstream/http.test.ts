/**
 * Upstream over Streamable HTTP against the recording fixture: per-call headers, _meta,
 * cancellation, list_changed, session end, and a server that goes away and comes back.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isSluiceError } from '../../src/errors.js'
import { Upstream } from '../../src/upstream/index.js'
import {
  clientInfo,
  textOf,
  eventually,
  freePort,
  startRecorder,
  tempDir,
  type RunningServer,
} from './helpers.js'

function lines(file: string): Array<Record<string, unknown>> {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

const dir = tempDir('sluice-http-')
const cancelLog = join(dir.path, 'cancel.jsonl')
const requestLog = join(dir.path, 'requests.jsonl')
let server: RunningServer
let changes = 0
let upstream: Upstream

beforeAll(async () => {
  server = await startRecorder({ CANCEL_LOG: cancelLog, REQUEST_LOG: requestLog })
  upstream = new Upstream(
    'rec',
    { url: server.url, headers: { 'X-Static': 'from-config' } },
    {
      callTimeoutMs: 10_000,
      clientInfo,
      onToolsChanged: () => changes++,
      sessionHeaders: () => ({ Authorization: 'Bearer session-level' }),
    },
  )
})
afterAll(async () => {
  try {
    await upstream?.close()
  } finally {
    try {
      await server?.stop()
    } finally {
      dir.remove()
    }
  }
})

describe('Upstream per-call HTTP headers', () => {
  it('sends each call its own headers, also in parallel, over one session', async () => {
    const tenants = ['a', 'b', 'c', 'd', 'e']
    const results = await Promise.all(
      tenants.map((t) =>
        upstream.callTool(
          'whoami',
          {},
          { headers: { Authorization: `Bearer token-${t}`, 'X-Tenant': t } },
        ),
      ),
    )
    expect(results.map((r) => r.structuredContent)).toEqual(
      tenants.map((t) => ({
        authorization: `Bearer token-${t}`,
        'x-tenant': t,
        'x-static': 'from-config',
      })),
    )
  })

  it('uses the session-level headers for a call without its own, and for initialize', async () => {
    const result = await upstream.callTool('whoami', {})
    expect(result.structuredContent).toEqual({
      authorization: 'Bearer session-level',
      'x-tenant': null,
      'x-static': 'from-config',
    })
    const init = lines(requestLog).find((l) => (l.methods as string[]).includes('initialize'))
    expect(init?.authorization).toBe('Bearer session-level')
  })

  it('never lets a per-call header replace the session id', async () => {
    const result = await upstream.callTool(
      'whoami',
      {},
      { headers: { 'Mcp-Session-Id': 'hijack', Authorization: 'Bearer x' } },
    )
    expect(result.isError).toBeFalsy()
    expect(upstream.health().restarts).toBe(0)
  })
})

describe('Upstream _meta', () => {
  it('puts the host-built meta in params._meta and nothing from the arguments', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
    const result = await upstream.callTool(
      'meta',
      { x: { _meta: { evil: true } } },
      { meta: { traceparent } },
    )
    expect(JSON.parse(textOf(result))).toEqual({ traceparent })
  })
})

describe('Upstream cancellation over HTTP', () => {
  it("sends notifications/cancelled with the call's own credentials", async () => {
    const err = await upstream
      .callTool(
        'slow',
        { ms: 5_000 },
        { timeoutMs: 300, headers: { Authorization: 'Bearer caller-1' } },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(isSluiceError(err, 'TOOL_TIMEOUT')).toBe(true)
    await eventually(() => lines(cancelLog).length === 1)
    const cancel = lines(requestLog).find((l) =>
      (l.methods as string[]).includes('notifications/cancelled'),
    )
    expect(cancel?.authorization).toBe('Bearer caller-1')
  })
})

describe('Upstream tools/list_changed over HTTP', () => {
  it('calls onToolsChanged', async () => {
    const before = changes
    await upstream.callTool('mutate', {})
    await eventually(() => changes === before + 1)
  })
})

describe('Upstream HTTP session lifecycle', () => {
  it('reports UPSTREAM_UNAVAILABLE while the server is down and reconnects when it is back', async () => {
    const port = await freePort()
    let flaky = await startRecorder({ PORT: String(port) })
    const client = new Upstream(
      'flaky',
      { url: flaky.url, headers: {} },
      { callTimeoutMs: 5_000, clientInfo, initialBackoffMs: 10, maxBackoffMs: 10 },
    )
    try {
      expect((await client.callTool('whoami', {})).isError).toBeFalsy()
      await flaky.stop()
      const err = await client.callTool('whoami', {}).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(err).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' })
      expect((err as Error).message).toMatch(
        /^upstream flaky is unavailable: fetch failed: .*ECONNREFUSED/,
      )
      flaky = await startRecorder({ PORT: String(port) })
      await eventually(() => client.health().state !== 'backoff', 2_000)
      const result = await client.callTool('whoami', {})
      expect(result.isError).toBeFalsy()
    } finally {
      await client.close()
      await flaky.stop()
    }
  })

  it('terminates the session on close', async () => {
    const before = lines(requestLog).filter((l) => l.http === 'DELETE').length
    const short = new Upstream(
      'short',
      { url: server.url, headers: {} },
      { callTimeoutMs: 5_000, clientInfo },
    )
    await short.connect()
    await short.close()
    expect(lines(requestLog).filter((l) => l.http === 'DELETE').length).toBe(before + 1)
    expect(short.health().state).toBe('closed')
  })
})
