/**
 * Progress and resumability end to end: a real `sluice serve` (the built CLI, on 127.0.0.1) in
 * front of the real `server-everything` over stdio, and real clients.
 *
 * - With a progress token, `execute_code` reports each inner call as it completes and relays the
 *   upstream's own progress (`trigger-long-running-operation`), on 2025-11-25 over HTTP (SDK 1.x)
 *   and stdio, and on 2026-07-28 (SDK 2.x, stateless); direct mode relays the upstream's.
 * - Progress restarts the per-call timeout, up to `limits.callMaxTotalMs`, whether or not the
 *   client listens; a call with no progress still times out.
 * - A 2025-11-25 SSE stream dropped mid-call resumes: the SDK 1.x client reconnects through a
 *   proxy that cut it, with `Last-Event-ID`, and gets every event it missed. Raw HTTP checks the
 *   priming event and `retry`, and `gateway.resumability.maxEventsPerStream` at N and N+1.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as HttpV2,
} from '@modelcontextprotocol/client'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { ProgressNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { startCutProxy, type CutProxy } from '../helpers/cut-proxy.js'
import { startIdp, type Idp } from '../helpers/idp.js'
import { SERVERS } from '../helpers/runtime.js'
import { AUDIENCE, MAIN, startServe, stopChild, type ServeProcess } from './clients/harness.js'

/** `servers.everything.timeoutMs`: a call with no progress for this long fails. */
const CALL_TIMEOUT_MS = 1_000
/** `limits.callMaxTotalMs`: the most a call that keeps reporting progress may run. */
const MAX_TOTAL_MS = 3_000
/** `gateway.resumability.maxEventsPerStream`. */
const EVENTS_PER_STREAM = 20
const RETRY_MS = 500

let idp: Idp
let dir: string
let configFile: string
let serve: ServeProcess
let token: string
const cleanups: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  idp = await startIdp()
  dir = mkdtempSync(join(tmpdir(), 'sluice-progress-'))
  writeFileSync(
    join(dir, 'policy.yaml'),
    stringify({
      rules: [{ id: 'everything', effect: 'allow', when: 'tool.server == "everything"' }],
    }),
  )
  configFile = join(dir, 'sluice.yaml')
  writeFileSync(
    configFile,
    stringify({
      servers: {
        everything: {
          command: process.execPath,
          args: [SERVERS.everything, 'stdio'],
          timeoutMs: CALL_TIMEOUT_MS,
        },
      },
      policies: ['policy.yaml'],
      identity: {
        audience: AUDIENCE,
        issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
        local: { sub: 'local-user', scopes: [] },
      },
      limits: { callMaxTotalMs: MAX_TOTAL_MS, timeoutMs: 20_000 },
      gateway: {
        directMode: true,
        resumability: { retryMs: RETRY_MS, maxEventsPerStream: EVENTS_PER_STREAM },
      },
      sandbox: { workers: 1, prewarm: 1 },
    }),
  )
  serve = await startServe(configFile)
  token = await idp.mint({ sub: 'alice', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })
}, 60_000)

afterAll(async () => {
  if (serve !== undefined) await stopChild(serve.child)
  await idp?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const auth = () => ({ Authorization: `Bearer ${token}` })

async function v1(url = serve.url): Promise<Client> {
  const client = new Client({ name: 'progress-e2e', version: '0.0.1' })
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth() } }),
  )
  cleanups.push(() => client.close())
  return client
}

const LONG = 'everything.trigger-long-running-operation'
const long = (duration: number, steps: number) =>
  `tools.everything['trigger-long-running-operation']({ duration: ${duration}, steps: ${steps} })`

/** One echo, then the long-running tool in three steps. */
const CODE = `await tools.everything.echo({ message: 'a' })\nreturn await ${long(0.6, 3)}`
const DONE_TEXT = 'Long running operation completed. Duration: 0.6 seconds, Steps: 3.'
/** What a client that asked for progress receives for CODE, in order. */
const EXPECTED = [
  { progress: 1, message: 'everything.echo done (1 call)' },
  { progress: 1.5, message: `${LONG} progress 1/3` },
  { progress: 1 + 2 / 3, message: `${LONG} progress 2/3` },
  { progress: 1.75, message: `${LONG} progress 3/3` },
  { progress: 2, message: `${LONG} done (2 calls)` },
]

type Progress = { progress: number; message?: string }
const seen = (list: Progress[]) => (p: Progress) =>
  void list.push({ progress: p.progress, message: p.message! })

interface Execution {
  ok: boolean
  result?: unknown
  calls: Array<{ tool: string; ok: boolean; code?: string }>
  error?: { code: string; message: string }
}
const execution = (r: unknown) => (r as { structuredContent: Execution }).structuredContent

describe('progress for execute_code', () => {
  it('2025-11-25 over HTTP (SDK 1.x): each completed call, and the upstream progress relayed', async () => {
    const client = await v1()
    const got: Progress[] = []
    const r = await client.callTool(
      { name: 'execute_code', arguments: { code: CODE } },
      undefined,
      {
        onprogress: seen(got),
      },
    )
    expect(execution(r)).toMatchObject({ ok: true, result: DONE_TEXT })
    expect(got).toEqual(EXPECTED)
  })

  it('2025-11-25 over stdio (SDK 1.x, sluice stdio)', async () => {
    const client = new Client({ name: 'progress-e2e', version: '0.0.1' })
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [MAIN, 'stdio', '--config', configFile],
        stderr: 'pipe',
      }),
    )
    cleanups.push(() => client.close())
    // Read off the wire, not through `onprogress`: over stdio the SDK client retires a request's
    // progress handler when the response arrives in the same read as the last notifications,
    // before it dispatches them (typescript-sdk#2580), so `onprogress` may miss the last ones.
    const got: Progress[] = []
    client.setNotificationHandler(ProgressNotificationSchema, (n) => {
      expect(n.params.progressToken).toBe('stdio-1')
      seen(got)(n.params)
    })
    const r = await client.callTool({
      name: 'execute_code',
      arguments: { code: CODE },
      _meta: { progressToken: 'stdio-1' },
    })
    expect(execution(r)).toMatchObject({ ok: true, result: DONE_TEXT })
    expect(got).toEqual(EXPECTED)
  })

  it('2026-07-28 stateless (SDK 2.x pinned): the same notifications on the request’s SSE response', async () => {
    const transport = new HttpV2(new URL(serve.url), { requestInit: { headers: auth() } })
    const client = new ClientV2(
      { name: 'progress-e2e', version: '0.0.1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    )
    await client.connect(transport)
    cleanups.push(() => client.close())
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28')
    expect(transport.sessionId).toBeUndefined()
    const got: Progress[] = []
    const r = await client.callTool(
      { name: 'execute_code', arguments: { code: CODE } },
      { onprogress: seen(got) },
    )
    expect(execution(r)).toMatchObject({ ok: true, result: DONE_TEXT })
    expect(got).toEqual(EXPECTED)
  })

  it('sends nothing to a client that asked for no progress', async () => {
    const client = await v1()
    const notified: string[] = []
    client.fallbackNotificationHandler = async (n) => void notified.push(n.method)
    const r = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
    expect(execution(r)).toMatchObject({ ok: true, result: DONE_TEXT })
    expect(notified).toEqual([])
  })

  it('direct mode relays the upstream’s progress for the one call', async () => {
    const client = await v1()
    const got: Progress[] = []
    const r = await client.callTool(
      {
        name: 'everything__trigger-long-running-operation',
        arguments: { duration: 0.6, steps: 3 },
      },
      undefined,
      { onprogress: seen(got) },
    )
    expect(r.content).toEqual([{ type: 'text', text: DONE_TEXT }])
    expect(got).toEqual([
      { progress: 0.5, message: `${LONG} progress 1/3` },
      { progress: 2 / 3, message: `${LONG} progress 2/3` },
      { progress: 0.75, message: `${LONG} progress 3/3` },
    ])
  })
})

describe('upstream progress and the call timeout', () => {
  it(`progress restarts the ${CALL_TIMEOUT_MS} ms timeout: a 2 s call that reports every 250 ms finishes, whether or not the client listens`, async () => {
    const client = await v1()
    const r = await client.callTool({
      name: 'execute_code',
      arguments: { code: `return await ${long(2, 8)}` },
    })
    expect(execution(r)).toMatchObject({
      ok: true,
      result: 'Long running operation completed. Duration: 2 seconds, Steps: 8.',
    })
  })

  it(`a call silent for longer than ${CALL_TIMEOUT_MS} ms still times out`, async () => {
    const client = await v1()
    const r = await client.callTool({
      name: 'execute_code',
      arguments: { code: `return await ${long(1.5, 1)}` },
    })
    expect(execution(r).calls).toEqual([
      expect.objectContaining({ tool: LONG, ok: false, code: 'TOOL_TIMEOUT' }),
    ])
    expect(execution(r).error?.message).toContain(
      `tools/call trigger-long-running-operation on upstream everything did not answer within ${CALL_TIMEOUT_MS} ms`,
    )
  })

  it(`progress never keeps a call past limits.callMaxTotalMs (${MAX_TOTAL_MS} ms)`, async () => {
    const client = await v1()
    const started = performance.now()
    const r = await client.callTool({
      name: 'execute_code',
      arguments: { code: `return await ${long(6, 24)}` },
    })
    const ms = performance.now() - started
    expect(execution(r).calls).toEqual([
      expect.objectContaining({ tool: LONG, ok: false, code: 'TOOL_TIMEOUT' }),
    ])
    expect(execution(r).error?.message).toContain(
      `tools/call trigger-long-running-operation on upstream everything reported progress but did not finish within ${MAX_TOTAL_MS} ms, the most a call may run`,
    )
    expect(ms).toBeGreaterThanOrEqual(MAX_TOTAL_MS)
    expect(ms).toBeLessThan(6_000)
  })
})

describe('resumable 2025-11-25 streams', () => {
  it('a stream cut mid-call resumes: the SDK 1.x client reconnects with Last-Event-ID and gets every missed event', async () => {
    const proxy: CutProxy = await startCutProxy(serve.url)
    cleanups.push(() => proxy.close())
    const client = await v1(proxy.url)
    const got: Progress[] = []
    // A step every 150 ms and retry: 500, so steps happen while the client is away.
    const r = await client.callTool(
      { name: 'execute_code', arguments: { code: `return await ${long(1.5, 10)}` } },
      undefined,
      {
        onprogress: (p) => {
          seen(got)(p)
          if (got.length === 1) proxy.cut()
        },
      },
    )
    expect(execution(r)).toMatchObject({
      ok: true,
      result: 'Long running operation completed. Duration: 1.5 seconds, Steps: 10.',
    })
    expect(got).toEqual([
      ...Array.from({ length: 10 }, (_, k) => ({
        progress: (k + 1) / (k + 2),
        message: `${LONG} progress ${k + 1}/10`,
      })),
      { progress: 1, message: `${LONG} done (1 call)` },
    ])
    const resumes = proxy.requests.filter((q) => q.method === 'GET' && q.lastEventId !== undefined)
    expect(resumes).toHaveLength(1)
    expect(resumes[0]!.lastEventId).toMatch(/^[0-9a-f-]{36}:\d+$/)
  })

  /** Opens a 2025-11-25 session by hand and returns its id. */
  async function session(): Promise<string> {
    const init = await fetch(serve.url, {
      method: 'POST',
      headers: { ...auth(), ...JSON_SSE },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: {
          protocolVersion: '2025-11-25',
          capabilities: {},
          clientInfo: { name: 'raw', version: '1' },
        },
      }),
    })
    expect(init.status).toBe(200)
    await init.text()
    const id = init.headers.get('mcp-session-id')!
    const initialized = await fetch(serve.url, {
      method: 'POST',
      headers: { ...auth(), ...JSON_SSE, ...inSession(id) },
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    })
    expect(initialized.status).toBe(202)
    cleanups.push(() =>
      fetch(serve.url, { method: 'DELETE', headers: { ...auth(), ...inSession(id) } }),
    )
    return id
  }

  /** Runs code whose stream carries exactly `k` events after the priming one; reads it all. */
  async function runWithEvents(id: string, k: number): Promise<SseEvent[]> {
    const code = [
      ...Array.from(
        { length: k - 1 },
        (_, i) => `await tools.everything.echo({ message: 'e${i}' })`,
      ),
      "return 'done'",
    ].join('\n')
    const res = await fetch(serve.url, {
      method: 'POST',
      headers: { ...auth(), ...JSON_SSE, ...inSession(id) },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'execute_code', arguments: { code }, _meta: { progressToken: 'p' } },
      }),
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    return parseSse(await res.text())
  }

  function resume(id: string, lastEventId: string, signal?: AbortSignal): Promise<Response> {
    return fetch(serve.url, {
      method: 'GET',
      headers: {
        ...auth(),
        accept: 'text/event-stream',
        ...inSession(id),
        'last-event-id': lastEventId,
      },
      ...(signal === undefined ? {} : { signal }),
    })
  }

  it(`opens each POST stream with a priming event (an id, no data) carrying retry: ${RETRY_MS}`, async () => {
    const events = await runWithEvents(await session(), 2)
    expect(events[0]).toEqual({ id: expect.stringMatching(/:\d+$/), retry: RETRY_MS, data: '' })
    expect(events.slice(1).every((e) => e.id !== undefined && e.data !== '')).toBe(true)
    expect(events).toHaveLength(3)
  })

  it(`replays ${EVENTS_PER_STREAM} events after the cursor (maxEventsPerStream), in order`, async () => {
    const id = await session()
    const events = await runWithEvents(id, EVENTS_PER_STREAM)
    const [priming, ...after] = events
    expect(after).toHaveLength(EVENTS_PER_STREAM)
    expect(JSON.parse(after.at(-1)!.data)).toMatchObject({
      id: 1,
      result: { structuredContent: { ok: true, result: 'done' } },
    })

    const stop = new AbortController()
    const res = await resume(id, priming!.id!, stop.signal)
    expect(res.status).toBe(200)
    const replayed = await readEvents(res, EVENTS_PER_STREAM)
    stop.abort()
    expect(replayed).toEqual(after.map(({ id: eventId, data }) => ({ id: eventId, data })))
  })

  it(`refuses with 410 a resume after which ${EVENTS_PER_STREAM + 1} events were sent (one was dropped)`, async () => {
    const id = await session()
    const [priming, ...after] = await runWithEvents(id, EVENTS_PER_STREAM + 1)
    expect(after).toHaveLength(EVENTS_PER_STREAM + 1)
    const res = await resume(id, priming!.id!)
    expect(res.status).toBe(410)
    expect(await res.json()).toMatchObject({
      jsonrpc: '2.0',
      error: {
        code: -32000,
        message: `Gone: cannot resume after Last-Event-ID ${JSON.stringify(priming!.id)}: events sent after it were dropped to stay within gateway.resumability limits; send the request again`,
      },
    })
    // From the first event that is still held, the resume is exact again.
    const stop = new AbortController()
    const ok = await resume(id, after[0]!.id!, stop.signal)
    expect(ok.status).toBe(200)
    const replayed = await readEvents(ok, EVENTS_PER_STREAM)
    stop.abort()
    expect(replayed).toEqual(after.slice(1).map(({ id: eventId, data }) => ({ id: eventId, data })))
  })
})

const JSON_SSE = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
}
const inSession = (id: string) => ({ 'mcp-session-id': id, 'mcp-protocol-version': '2025-11-25' })

interface SseEvent {
  id?: string
  retry?: number
  data: string
}

/** The events of an SSE body (comments and `event:` lines are skipped). */
function parseSse(text: string): SseEvent[] {
  const events: SseEvent[] = []
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l !== '' && !l.startsWith(':'))
    if (lines.length === 0) continue
    const event: SseEvent = { data: '' }
    const data: string[] = []
    for (const line of lines) {
      const at = line.indexOf(':')
      const field = at === -1 ? line : line.slice(0, at)
      const value = at === -1 ? '' : line.slice(at + 1).replace(/^ /, '')
      if (field === 'id') event.id = value
      else if (field === 'retry') event.retry = Number(value)
      else if (field === 'data') data.push(value)
    }
    event.data = data.join('\n')
    events.push(event)
  }
  return events
}

/** Reads `count` events off an open SSE response. */
async function readEvents(res: Response, count: number): Promise<SseEvent[]> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  for (;;) {
    const end = text.lastIndexOf('\n\n')
    const events = end === -1 ? [] : parseSse(text.slice(0, end))
    if (events.length >= count) {
      await reader.cancel()
      return events
    }
    const { value, done } = await reader.read()
    if (done) return parseSse(text)
    text += value
  }
}
