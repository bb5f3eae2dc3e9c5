/**
 * Shared test parts for the gateway: a fake engine (records what the gateway passes it and can
 * ask for approval), configs, real ES256 tokens checked by the real auth verifier, and an SDK
 * client on a real 127.0.0.1 port.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose'
import { parseConfig, type Config } from '../../src/config/index.js'
import type { ApprovalAnswer, ExecuteOptions, GatewayEngine } from '../../src/gateway/index.js'
import type { CatalogTool, DefinitionHash, ExecutionResult, Principal } from '../../src/types.js'

export const AUDIENCE = 'https://sluice.test/mcp'
export const ISSUER = 'https://idp.test'

export interface Seen {
  principal?: Principal
  options?: ExecuteOptions
  code?: string
  aborted?: boolean
  direct?: { tool: CatalogTool; args: unknown }
}

const echoTool: CatalogTool = {
  server: 'demo',
  name: 'echo',
  ident: 'echo',
  hash: 'sha256:00' as DefinitionHash,
  definition: {
    name: 'echo',
    description: 'Echoes the message.',
    inputSchema: {
      type: 'object',
      properties: { message: { type: 'string' } },
      required: ['message'],
    },
  },
}

/**
 * Behaviour by code: `approve` asks for approval and reports the answer; `fail` fails with a
 * position; `throw` throws (an engine bug); `wait` waits for the abort signal; `progress` reports
 * progress; anything else succeeds with `{ sub, code }` and one log line.
 */
export function fakeEngine(
  health?: Omit<ReturnType<GatewayEngine['health']>, 'executions'> &
    Partial<Pick<ReturnType<GatewayEngine['health']>, 'executions'>>,
  admission: {
    refusal?: Awaited<ReturnType<GatewayEngine['checkAdmission']>>
    draining?: boolean
  } = {},
): GatewayEngine & { seen: Seen; drained: boolean } {
  const seen: Seen = {}
  const engine: GatewayEngine & { seen: Seen; drained: boolean } = {
    seen,
    drained: false,
    listTools: () => [echoTool],
    describeExecuteCode: (p) =>
      `Declarations for ${p.sub}: declare const tools: { demo: { echo(a: { message: string }): Promise<unknown> } }`,
    searchTools: (_p, query, limit) => ({
      matches: [
        {
          tool: 'demo.echo',
          declaration: 'echo(args: { message: string }): Promise<unknown>',
          score: 1,
        },
      ]
        .slice(0, limit ?? 5)
        .filter(() => query !== 'nothing'),
      more: query === 'more' ? ['tools.demo.echo2'] : [],
    }),
    async execute(principal, code, options): Promise<ExecutionResult> {
      seen.principal = principal
      seen.options = options
      seen.code = code
      if (code === 'approve') {
        const answer: ApprovalAnswer = await options!.approve!({
          tool: 'payments.pay',
          argsSummary: '{ amount: 5000 }',
          ruleId: 'big-payments-need-a-human',
          reason: 'payments over 1000 need a human',
        })
        return answer === 'accept'
          ? {
              ok: true,
              result: { answer },
              logs: [],
              calls: [{ tool: 'payments.pay', ok: true, ms: 1, decision: 'approve' }],
            }
          : {
              ok: false,
              result: undefined,
              logs: [],
              calls: [
                {
                  tool: 'payments.pay',
                  ok: false,
                  ms: 1,
                  decision: 'APPROVAL_DENIED',
                  code: 'APPROVAL_DENIED',
                },
              ],
              error: { code: 'APPROVAL_DENIED', message: `approval ${answer}` },
            }
      }
      if (code === 'fail') {
        return {
          ok: false,
          result: undefined,
          logs: ['before'],
          calls: [],
          error: { code: 'RUNTIME_ERROR', message: 'x is not defined', line: 2, column: 5 },
        }
      }
      if (code === 'throw') throw new Error('secret host detail /srv/secret')
      if (code === 'wait') {
        await new Promise<void>((resolve) => {
          if (options?.signal?.aborted) resolve()
          options?.signal?.addEventListener('abort', () => resolve(), { once: true })
        })
        seen.aborted = options?.signal?.aborted ?? false
        return {
          ok: false,
          result: undefined,
          logs: [],
          calls: [],
          error: { code: 'CANCELLED', message: 'cancelled' },
        }
      }
      if (code === 'progress') {
        options?.onProgress?.('step one')
        options?.onProgress?.('step two')
      }
      return { ok: true, result: { sub: principal.sub, code }, logs: ['hello'], calls: [] }
    },
    async callDirect(_principal, tool, args) {
      seen.direct = { tool, args }
      return { content: [{ type: 'text', text: `direct ${tool.server}.${tool.name}` }] }
    },
    health: () => ({
      ...(health ?? { ready: true, upstreams: {}, pool: { workers: 1, ready: 1, busy: 0 } }),
      executions: health?.executions ?? {
        running: 0,
        queued: 0,
        draining: engine.drained || admission.draining === true,
      },
    }),
    checkAdmission: async () => admission.refusal,
    drain: () => {
      engine.drained = true
    },
    idle: async () => {},
    close: async () => {},
  }
  return engine
}

export interface Identity {
  dir: string
  config: (gateway?: Record<string, unknown>) => Config
  token: (claims?: { sub?: string; exp?: number; aud?: string }) => Promise<string>
  cleanup: () => void
}

/** A real ES256 key, its JWKS in a temp dir, and configs whose identity trusts it. */
export async function makeIdentity(): Promise<Identity> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-gateway-'))
  const { privateKey, publicKey } = await generateKeyPair('ES256')
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
  const jwksFile = join(dir, 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }))
  return {
    dir,
    config: (gateway = {}) =>
      parseConfig(
        {
          identity: {
            audience: AUDIENCE,
            issuers: [{ issuer: ISSUER, jwksFile, algorithms: ['ES256'] }],
          },
          gateway,
        },
        join(dir, 'sluice.yaml'),
        dir,
      ),
    token: (claims = {}) => sign(privateKey, claims),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  }
}

async function sign(
  key: CryptoKey,
  claims: { sub?: string; exp?: number; aud?: string },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ scope: 'mcp' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setSubject(claims.sub ?? 'alice')
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 300)
    .sign(key)
}

/** A config without identity (for insecureDev). */
export function devConfig(gateway: Record<string, unknown> = {}): Config {
  return parseConfig({ gateway })
}

export const INIT_BODY = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: {},
    clientInfo: { name: 't', version: '1' },
  },
} as const

export const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
} as const

/** The JSON-RPC messages of an SSE (or plain JSON) response body. */
export function messagesOf(body: string): unknown[] {
  if (body.trimStart().startsWith('{')) return [JSON.parse(body)]
  return body
    .split('\n')
    .filter((l) => l.startsWith('data: '))
    .map((l) => JSON.parse(l.slice(6)))
}

export interface ClientOptions {
  token?: string
  capabilities?: Record<string, unknown>
}

/** A real SDK client connected to `url`. */
export async function connectClient(
  url: string,
  options: ClientOptions = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client(
    { name: 'gateway-test', version: '0.0.1' },
    { capabilities: options.capabilities ?? {} },
  )
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit:
      options.token === undefined ? {} : { headers: { authorization: `Bearer ${options.token}` } },
  })
  await client.connect(transport)
  return { client, transport }
}
