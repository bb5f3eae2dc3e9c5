/**
 * Shared parts of the end-to-end tests: the real gateway (`buildApp` + `listen` on 127.0.0.1:0)
 * in front of a real runtime, an SDK client over Streamable HTTP, the audit JSONL, the
 * Streamable HTTP fixtures as child processes, and waiting for upstream tools.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { FastifyInstance } from 'fastify'
import { createTokenVerifier } from '../../src/auth/index.js'
import { buildApp, listen } from '../../src/gateway/index.js'
import type { Runtime } from '../../src/cli/compose.js'
import { FIXTURES } from '../helpers/runtime.js'

/** The approval tests' policy: the recording fixture's tools allowed, payments over 1000 asked. */
export const APPROVAL_POLICY = `
rules:
  - id: rec-tools
    effect: allow
    when: tool.server == "rec"
  - id: big-payments-need-a-human
    effect: approve
    description: payments over 1000 need a human
    when: tool.server == "rec" && tool.name == "pay" && args.amount > 1000
`

export interface Gateway {
  url: string
  app: FastifyInstance
  /** Every line fastify's logger wrote (JSON), when `captureLogs` was set. */
  logs: string[]
  close(): Promise<void>
}

/** The gateway in front of `runtime`: identity from the config, or insecure dev mode without it. */
export async function startGateway(
  runtime: Runtime,
  options: { captureLogs?: boolean } = {},
): Promise<Gateway> {
  const logs: string[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      done()
    },
  })
  const identity = runtime.config.identity
  const app = buildApp({
    config: runtime.config,
    engine: runtime.engine,
    host: '127.0.0.1',
    ...(identity === undefined
      ? { insecureDev: true }
      : { verifier: createTokenVerifier(identity) }),
    // `debug` so every request line is captured, not only warnings.
    logger: options.captureLogs === true ? { level: 'debug', stream } : false,
  })
  const url = await listen(app, { host: '127.0.0.1', port: 0, print: () => {} })
  return { url, app, logs, close: () => app.close() }
}

/** A real SDK client; `elicitation: true` declares the form elicitation capability. */
export async function connect(
  url: string,
  options: { token?: string; elicitation?: boolean } = {},
): Promise<Client> {
  const client = new Client(
    { name: 'e2e', version: '0.0.1' },
    { capabilities: options.elicitation === true ? { elicitation: { form: {} } } : {} },
  )
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit:
      options.token === undefined ? {} : { headers: { authorization: `Bearer ${options.token}` } },
  })
  await client.connect(transport)
  return client
}

export interface AuditLine {
  type: string
  tool?: string
  decision?: string
  status?: string
  code?: string
  ruleId?: string
  principal?: { sub: string }
  [key: string]: unknown
}

export function readAudit(file: string): AuditLine[] {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine)
}

export interface HttpRecorder {
  url: string
  child: ChildProcess
  close(): Promise<void>
}

/** Starts `test/fixtures/servers/http-recorder.mjs` and waits for its port. */
export function startHttpRecorder(env: Record<string, string> = {}): Promise<HttpRecorder> {
  return startHttpFixture(`${FIXTURES}/servers/http-recorder.mjs`, env)
}

/** Starts a Streamable HTTP fixture that prints `LISTENING <port>`, and waits for it. */
export async function startHttpFixture(
  script: string,
  env: Record<string, string> = {},
): Promise<HttpRecorder> {
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8')
      const m = /LISTENING (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.once('exit', (code) => reject(new Error(`http-recorder exited with ${String(code)}`)))
  })
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    child,
    close: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      await exited
    },
  }
}

/**
 * Waits until every named upstream has listed its tools, re-listing the ones that failed (a busy
 * machine can miss a short `timeoutMs` on the first initialize, and the engine does not retry).
 */
export async function waitForTools(
  runtime: Runtime,
  servers: string[],
  attempts = 5,
): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    const health = runtime.engine.health()
    const missing = servers.filter((s) => (health.upstreams[s]?.tools ?? 0) === 0)
    if (missing.length === 0) return
    for (const s of missing) await runtime.engine.refresh(s)
  }
  throw new Error(`upstreams without tools: ${JSON.stringify(runtime.engine.health().upstreams)}`)
}

/** The `structuredContent` of an execute_code result. */
export interface Execution {
  ok: boolean
  result?: unknown
  logs: string[]
  calls: Array<{ tool: string; ok: boolean; decision: string; code?: string }>
  error?: { code: string; message: string }
}

export async function execute(client: Client, code: string): Promise<Execution> {
  const res = await client.callTool({ name: 'execute_code', arguments: { code } })
  return res.structuredContent as unknown as Execution
}
