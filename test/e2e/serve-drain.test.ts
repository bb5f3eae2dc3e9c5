/**
 * `sluice serve` under backpressure and on SIGTERM, as an operator (or Kubernetes) sees it:
 * past `limits.maxConcurrentExecutions` + `limits.maxQueuedExecutions` an execution is answered
 * 503 with Retry-After at once; on SIGTERM `/readyz` turns 503 at once, new executions are
 * refused with 503, the running one finishes, the audit verifies, and the process exits 0.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FIXTURES, ROOT } from '../helpers/runtime.js'
import { connect, readAudit } from './helpers.js'

const MAIN = join(ROOT, 'dist', 'src', 'main.js')
let dir: string
let server: ChildProcess
let url: string
let stderr = ''
let exited: Promise<number | null>
const clients: Client[] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-drain-'))
  writeFileSync(
    join(dir, 'sluice.yaml'),
    `servers:
  slow: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(join(FIXTURES, 'servers/slow.mjs'))}] }
limits: { maxConcurrentExecutions: 1, maxQueuedExecutions: 0 }
shutdown: { drainMs: 20000 }
audit: { file: audit.jsonl }
sandbox: { workers: 1 }
`,
  )
  server = spawn(
    process.execPath,
    [MAIN, 'serve', '--config', join(dir, 'sluice.yaml'), '--port', '0', '--insecure-dev'],
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
})

afterAll(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => undefined)
  if (server.exitCode === null && server.signalCode === null) {
    server.kill('SIGKILL')
    await exited
  }
  rmSync(dir, { recursive: true, force: true })
})

async function readyz(): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(new URL('/readyz', url))
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

/** A raw `tools/call` of execute_code on `client`'s session. */
async function rawExecute(client: Client, code: string): Promise<Response> {
  const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-06-18',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 99,
      method: 'tools/call',
      params: { name: 'execute_code', arguments: { code } },
    }),
  })
}

async function whileRunning(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400 && !(await check()); i++) await new Promise((r) => setImmediate(r))
}

describe('sluice serve: backpressure and drain', () => {
  it('past the limits an execution is answered 503 with Retry-After, at once', async () => {
    const client = await connect(url)
    clients.push(client)
    const running = client.callTool({
      name: 'execute_code',
      arguments: { code: 'await tools.slow.slow({ ms: 1500 }); return "first"' },
    })
    await whileRunning(
      async () => ((await readyz()).body.executions as { running: number }).running === 1,
    )
    const refused = await rawExecute(client, 'return 2')
    expect(refused.status).toBe(503)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(((await refused.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'OVERLOADED',
    )
    expect(await running).toMatchObject({ structuredContent: { ok: true, result: 'first' } })
  })

  it('on SIGTERM: /readyz 503 and new executions refused at once, the running one finishes, exit 0', async () => {
    const client = await connect(url)
    clients.push(client)
    const running = client.callTool({
      name: 'execute_code',
      arguments: { code: 'const r = await tools.slow.slow({ ms: 1500 }); return "drained " + r' },
    })
    await whileRunning(
      async () => ((await readyz()).body.executions as { running: number }).running === 1,
    )
    server.kill('SIGTERM')
    await whileRunning(async () => (await readyz()).status === 503)
    expect(await readyz()).toMatchObject({
      status: 503,
      body: { status: 'not ready', reason: 'shutting down: finishing running executions' },
    })
    const refused = await rawExecute(client, 'return 3')
    expect(refused.status).toBe(503)
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
      'OVERLOADED: the gateway is shutting down: retry on another replica',
    )
    expect(await running).toMatchObject({
      structuredContent: { ok: true, result: 'drained waited 1500 ms' },
    })
    expect(await exited).toBe(0)
    expect(stderr).toContain('drained: no execution is running; shutting down')
    const verify = spawnSync(
      process.execPath,
      [MAIN, 'audit', 'verify', join(dir, 'audit.jsonl')],
      { encoding: 'utf8' },
    )
    expect(verify.status, verify.stderr + verify.stdout).toBe(0)
    expect(
      readAudit(join(dir, 'audit.jsonl')).filter((r) => r.type === 'execution.end'),
    ).toHaveLength(2)
  })
})
