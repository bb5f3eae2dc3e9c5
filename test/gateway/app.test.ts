/**
 * The HTTP edge of the gateway through `app.inject()`: health, readiness, metrics, RFC 9728
 * metadata, auth refusals and their headers, Host/Origin checks, body and JSON errors, batches,
 * sessions and their limits.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { OAuthProtectedResourceMetadataSchema } from '@modelcontextprotocol/sdk/shared/auth.js'
import type { FastifyInstance } from 'fastify'
import { SluiceError } from '../../src/errors.js'
import { buildApp, METRICS_CONTENT_TYPE } from '../../src/gateway/index.js'
import {
  INIT_BODY,
  MCP_HEADERS,
  devConfig,
  fakeEngine,
  makeIdentity,
  messagesOf,
  type Identity,
} from './helpers.js'

let id: Identity
let apps: FastifyInstance[] = []

beforeAll(async () => {
  id = await makeIdentity()
})
afterAll(() => id.cleanup())
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()))
  apps = []
})

function app(deps: Partial<Parameters<typeof buildApp>[0]> = {}): FastifyInstance {
  const a = buildApp({ config: id.config(), engine: fakeEngine(), ...deps })
  apps.push(a)
  return a
}

async function initialize(a: FastifyInstance, token: string, extra: Record<string, string> = {}) {
  const res = await a.inject({
    method: 'POST',
    url: '/mcp',
    headers: { ...MCP_HEADERS, authorization: `Bearer ${token}`, ...extra },
    payload: INIT_BODY,
  })
  return res
}

function rpcMessage(body: string): string {
  return (JSON.parse(body) as { error: { message: string } }).error.message
}

describe('buildApp', () => {
  it('refuses to build without identity unless insecureDev is set', () => {
    expect(() => buildApp({ config: devConfig(), engine: fakeEngine() })).toThrow(
      'the gateway needs identity (config.identity or a verifier), or insecureDev on loopback',
    )
  })
})

describe('health, readiness, metrics', () => {
  it('GET /healthz is always 200 ok', async () => {
    const res = await app({
      engine: fakeEngine({ ready: false, upstreams: {}, pool: { workers: 0, ready: 0, busy: 0 } }),
    }).inject('/healthz')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'ok' })
  })

  it('GET /readyz is 200 when the pool is ready and some upstream is up', async () => {
    const engine = fakeEngine({
      ready: true,
      upstreams: {
        a: { state: 'ready' },
        b: {
          state: 'backoff',
          lastError: 'connect ECONNREFUSED 10.0.0.1',
          restarts: 3,
          retryInMs: 400,
        },
        c: { state: 'idle', restarts: 0 },
      },
      pool: { workers: 1, ready: 2, busy: 0 },
    })
    const res = await app({ engine }).inject('/readyz')
    expect(res.statusCode).toBe(200)
    // Restarts and the wait before the next attempt are shown; the error text is not.
    expect(res.json()).toEqual({
      status: 'ready',
      upstreams: {
        a: { state: 'ready' },
        b: { state: 'backoff', restarts: 3, retryInMs: 400 },
        c: { state: 'idle', restarts: 0 },
      },
      pool: { workers: 1, ready: 2, busy: 0 },
      executions: { running: 0, queued: 0, draining: false },
      resumability: { events: 0, bytes: 0 },
    })
  })

  it('GET /readyz is 503 at once while the gateway drains, and says so', async () => {
    const engine = fakeEngine()
    engine.drain()
    const res = await app({ engine }).inject('/readyz')
    expect(res.statusCode).toBe(503)
    expect(res.json()).toMatchObject({
      status: 'not ready',
      reason: 'shutting down: finishing running executions',
      executions: { draining: true },
    })
  })

  it('GET /readyz is 503 when every upstream is down, and says why', async () => {
    const engine = fakeEngine({
      ready: true,
      upstreams: { a: { state: 'closed' }, b: { state: 'backoff' } },
      pool: { workers: 1, ready: 2, busy: 0 },
    })
    const res = await app({ engine }).inject('/readyz')
    expect(res.statusCode).toBe(503)
    expect(res.json()).toMatchObject({ status: 'not ready', reason: 'every upstream is down' })
  })

  it('GET /readyz is 503 when the sandbox pool is not ready', async () => {
    const res = await app({
      engine: fakeEngine({ ready: false, upstreams: {}, pool: { workers: 0, ready: 0, busy: 0 } }),
    }).inject('/readyz')
    expect(res.statusCode).toBe(503)
    expect(res.json()).toMatchObject({ reason: 'the sandbox pool is not ready' })
  })

  it('GET /metrics serves the Prometheus text with its content type', async () => {
    const res = await app({ metrics: () => 'sluice_executions_total 3\n' }).inject('/metrics')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe(METRICS_CONTENT_TYPE)
    expect(res.body).toBe('sluice_executions_total 3\n')
  })
})

describe('protected resource metadata', () => {
  it('serves RFC 9728 metadata at the well-known path and its /mcp variant', async () => {
    const a = app()
    for (const url of [
      '/.well-known/oauth-protected-resource',
      '/.well-known/oauth-protected-resource/mcp',
    ]) {
      const res = await a.inject(url)
      expect(res.statusCode).toBe(200)
      expect(res.json()).toEqual({
        resource: 'https://sluice.test/mcp',
        authorization_servers: ['https://idp.test'],
        bearer_methods_supported: ['header'],
      })
    }
  })

  it("parses with the MCP SDK's strict OAuthProtectedResourceMetadataSchema", async () => {
    const res = await app().inject('/.well-known/oauth-protected-resource')
    const parsed = OAuthProtectedResourceMetadataSchema.safeParse(res.json())
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true)
    expect(parsed.data?.authorization_servers).toEqual(['https://idp.test'])
  })

  it('leaves an issuer that is no URL out of authorization_servers, and a non-URL audience out of resource', async () => {
    const base = id.config()
    const identity = base.identity!
    const config = {
      ...base,
      identity: {
        ...identity,
        audience: 'sluice-gateway',
        issuers: [...identity.issuers, { ...identity.issuers[0]!, issuer: 'sluice-dev-issuer' }],
      },
    }
    const res = await app({ config, publicUrl: 'https://sluice.test' }).inject(
      '/.well-known/oauth-protected-resource',
    )
    expect(res.json()).toEqual({
      resource: 'https://sluice.test/mcp',
      authorization_servers: ['https://idp.test'],
      bearer_methods_supported: ['header'],
    })
    expect(OAuthProtectedResourceMetadataSchema.safeParse(res.json()).success).toBe(true)
  })

  it('answers 404 when no identity is configured', async () => {
    const res = await app({ config: devConfig(), insecureDev: true }).inject(
      '/.well-known/oauth-protected-resource',
    )
    expect(res.statusCode).toBe(404)
    expect(res.json().message).toBe('no identity is configured (insecure dev mode)')
  })
})

describe('authentication on /mcp', () => {
  it('JWT-15 answers 401 without a token, pointing at the metadata', async () => {
    const res = await app().inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: INIT_BODY,
    })
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toBe(
      'Bearer resource_metadata="https://sluice.test/.well-known/oauth-protected-resource"',
    )
    expect(rpcMessage(res.body)).toBe(
      'Unauthorized: authorization required: send "Authorization: Bearer <token>"',
    )
  })

  it('uses publicUrl for the metadata link when given', async () => {
    const res = await app({ publicUrl: 'https://gw.example.com/' }).inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, host: 'gw.example.com' },
      payload: INIT_BODY,
    })
    expect(res.headers['www-authenticate']).toBe(
      'Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource"',
    )
  })

  it('answers 401 invalid_token for a bad token', async () => {
    const res = await initialize(app(), 'not.a.token')
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toMatch(
      /^Bearer resource_metadata="https:\/\/sluice\.test\/\.well-known\/oauth-protected-resource", error="invalid_token"/,
    )
    expect(rpcMessage(res.body)).toMatch(/^Unauthorized: /)
  })

  it('answers 401 for an expired token', async () => {
    const res = await initialize(
      app(),
      await id.token({ exp: Math.floor(Date.now() / 1000) - 3600 }),
    )
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"')
  })

  it('answers 401 for a token with another audience', async () => {
    const res = await initialize(app(), await id.token({ aud: 'https://other.test/mcp' }))
    expect(res.statusCode).toBe(401)
  })

  it('JWT-13 ignores a token in the query string and says so', async () => {
    const token = await id.token()
    const res = await app().inject({
      method: 'POST',
      url: `/mcp?access_token=${token}`,
      headers: MCP_HEADERS,
      payload: INIT_BODY,
    })
    expect(res.statusCode).toBe(401)
    expect(rpcMessage(res.body)).toContain(
      '(a token in the URL is ignored: use the Authorization header)',
    )
  })

  it('accepts a valid token and opens a session', async () => {
    const res = await initialize(app(), await id.token())
    expect(res.statusCode).toBe(200)
    expect(res.headers['mcp-session-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(messagesOf(res.body)[0]).toMatchObject({
      id: 1,
      result: { serverInfo: { name: 'sluice' }, capabilities: { tools: {}, logging: {} } },
    })
  })

  it('insecureDev serves without a token as the local principal', async () => {
    const res = await app({ config: devConfig(), insecureDev: true }).inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: INIT_BODY,
    })
    expect(res.statusCode).toBe(200)
  })
})

describe('verifier outcomes', () => {
  it('JWT-14 answers 403 insufficient_scope with the scope when the verifier forbids', async () => {
    const verifier = {
      verify: async () => {
        throw new SluiceError('AUTH_FORBIDDEN', 'the token lacks scope mcp:run', {
          details: { scope: 'mcp:run' },
        })
      },
    }
    const res = await app({ verifier }).inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, authorization: 'Bearer x.y.z' },
      payload: INIT_BODY,
    })
    expect(res.statusCode).toBe(403)
    expect(res.headers['www-authenticate']).toBe(
      'Bearer resource_metadata="https://sluice.test/.well-known/oauth-protected-resource", error="insufficient_scope", scope="mcp:run"',
    )
    expect(rpcMessage(res.body)).toBe('Forbidden: the token lacks scope mcp:run')
  })

  it('answers 500 without detail when the verifier fails unexpectedly', async () => {
    const verifier = {
      verify: async () => {
        throw new Error('jwks cache corrupted at /var/secret')
      },
    }
    const res = await app({ verifier }).inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, authorization: 'Bearer x.y.z' },
      payload: INIT_BODY,
    })
    expect(res.statusCode).toBe(500)
    expect(JSON.parse(res.body).error).toEqual({
      code: -32603,
      message: 'Internal error while verifying the token',
    })
  })

  it('JWT-13 never writes a query-string token to the logs', async () => {
    const lines: string[] = []
    const a = app({ logger: { level: 'info', stream: { write: (l: string) => lines.push(l) } } })
    await a.inject({
      method: 'POST',
      url: '/mcp?access_token=canary-token-123',
      headers: MCP_HEADERS,
      payload: INIT_BODY,
    })
    expect(lines.some((l) => l.includes('"url":"/mcp"'))).toBe(true)
    expect(lines.join('')).not.toContain('canary-token-123')
  })

  it('logs one line per request: method, path, status and time', async () => {
    const lines: string[] = []
    const a = app({ logger: { level: 'info', stream: { write: (l: string) => lines.push(l) } } })
    await a.inject({ method: 'GET', url: '/healthz?x=1' })
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    const requests = entries.filter((e) => e['req'] !== undefined)
    expect(requests).toHaveLength(1)
    expect(requests[0]).toMatchObject({
      msg: 'request completed',
      req: { method: 'GET', url: '/healthz' },
      res: { statusCode: 200 },
    })
    expect(typeof requests[0]!['responseTime']).toBe('number')
  })
})

describe('edge checks on /mcp', () => {
  const dev = () =>
    app({
      config: devConfig({
        allowedHosts: ['mcp.internal', 'gw.local:9000'],
        allowedOrigins: ['https://app.example.com'],
      }),
      insecureDev: true,
    })
  const post = (
    a: FastifyInstance,
    headers: Record<string, string>,
    payload: unknown = INIT_BODY,
  ) =>
    a.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, ...headers },
      payload: payload as object,
    })

  it('PRT-01 refuses a foreign Host header with 403 (DNS rebinding)', async () => {
    const res = await post(dev(), { host: 'evil.example.com' })
    expect(res.statusCode).toBe(403)
    expect(JSON.parse(res.body)).toMatchObject({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32000 },
    })
    expect(rpcMessage(res.body)).toBe(
      'Forbidden: Host header not allowed (add it to gateway.allowedHosts if it is a name of this gateway)',
    )
  })

  it('checks the Host before the token', async () => {
    const res = await post(app(), { host: 'evil.example.com' })
    expect(res.statusCode).toBe(403)
  })

  it('accepts loopback names, allowedHosts entries and the audience host', async () => {
    const a = dev()
    for (const host of [
      'localhost:8787',
      '127.0.0.1',
      '[::1]:8787',
      'mcp.internal:443',
      'gw.local:9000',
      'sluice.test',
    ]) {
      const res =
        host === 'sluice.test'
          ? await post(app(), { host, authorization: `Bearer ${await id.token()}` })
          : await post(a, { host })
      expect(res.statusCode, host).toBe(200)
    }
  })

  it('pins the port of an allowedHosts entry that names one', async () => {
    expect((await post(dev(), { host: 'gw.local:9001' })).statusCode).toBe(403)
  })

  it('refuses a foreign Origin with 403 and accepts allowed and same-origin loopback ones', async () => {
    const a = dev()
    const foreign = await post(a, { origin: 'https://evil.example.com' })
    expect(foreign.statusCode).toBe(403)
    expect(rpcMessage(foreign.body)).toBe(
      'Forbidden: Origin not allowed (add it to gateway.allowedOrigins)',
    )
    expect((await post(a, { origin: 'https://app.example.com' })).statusCode).toBe(200)
    expect(
      (await post(a, { host: 'localhost:8787', origin: 'http://localhost:8787' })).statusCode,
    ).toBe(200)
    expect(
      (await post(a, { host: 'localhost:8787', origin: 'http://localhost:3000' })).statusCode,
    ).toBe(403)
  })

  it('answers -32700 for a body that is not JSON, and for an empty body', async () => {
    for (const payload of ['{"jsonrpc":', '']) {
      const res = await dev().inject({ method: 'POST', url: '/mcp', headers: MCP_HEADERS, payload })
      expect(res.statusCode).toBe(400)
      expect(JSON.parse(res.body)).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32700, message: 'Parse error: the body is not valid JSON' },
      })
    }
  })

  it('answers -32700 for a body with __proto__ keys', async () => {
    const res = await dev().inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: '{"__proto__":{"x":1}}',
    })
    expect(JSON.parse(res.body).error.code).toBe(-32700)
  })

  it('answers 415 for a body that is not application/json', async () => {
    const res = await dev().inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, 'content-type': 'text/plain' },
      payload: 'hello',
    })
    expect(res.statusCode).toBe(415)
    expect(rpcMessage(res.body)).toBe('Unsupported Media Type: send Content-Type: application/json')
  })

  it('accepts a body of exactly gateway.maxBodyBytes and refuses one byte more with 413', async () => {
    const limit = 1024
    const a = app({ config: devConfig({ maxBodyBytes: limit }), insecureDev: true })
    const json = JSON.stringify(INIT_BODY)
    const atLimit = json + ' '.repeat(limit - Buffer.byteLength(json))
    const ok = await a.inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: atLimit,
    })
    expect(ok.statusCode).toBe(200)
    const over = await a.inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: atLimit + ' ',
    })
    expect(over.statusCode).toBe(413)
    expect(rpcMessage(over.body)).toBe(
      'Payload Too Large: the body exceeds gateway.maxBodyBytes (1024 bytes)',
    )
  })

  it('PRT-02 refuses a JSON-RPC batch', async () => {
    const res = await post(dev(), {}, [
      INIT_BODY,
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ])
    expect(res.statusCode).toBe(400)
    expect(JSON.parse(res.body).error).toEqual({
      code: -32600,
      message: 'Invalid Request: JSON-RPC batches are not supported; send one message per request',
    })
  })

  it('answers 405 with Allow for other methods', async () => {
    const res = await dev().inject({
      method: 'PUT',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: '{}',
    })
    expect(res.statusCode).toBe(405)
    expect(res.headers['allow']).toBe('GET, POST, DELETE')
  })
})

describe('sessions', () => {
  const tools = { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }

  it('answers 400 to a non-initialize request without a session', async () => {
    const res = await app({ config: devConfig(), insecureDev: true }).inject({
      method: 'POST',
      url: '/mcp',
      headers: MCP_HEADERS,
      payload: tools,
    })
    expect(res.statusCode).toBe(400)
    expect(rpcMessage(res.body)).toBe(
      'Bad Request: Mcp-Session-Id header is required (send initialize first)',
    )
  })

  it('answers 404 to an unknown session', async () => {
    const res = await app({ config: devConfig(), insecureDev: true }).inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, 'mcp-session-id': 'nope', 'mcp-protocol-version': '2025-06-18' },
      payload: tools,
    })
    expect(res.statusCode).toBe(404)
    expect(JSON.parse(res.body).error).toEqual({
      code: -32001,
      message: 'Session not found: initialize a new session',
    })
  })

  it('PRT-05 requires a token on every request of a session, and one of the same subject', async () => {
    const a = app()
    const init = await initialize(a, await id.token({ sub: 'alice' }))
    const sid = String(init.headers['mcp-session-id'])
    const headers = { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }
    const bare = await a.inject({ method: 'POST', url: '/mcp', headers, payload: tools })
    expect(bare.statusCode).toBe(401)
    const mallory = await a.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...headers, authorization: `Bearer ${await id.token({ sub: 'mallory' })}` },
      payload: tools,
    })
    expect(mallory.statusCode).toBe(404)
    const alice = await a.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...headers, authorization: `Bearer ${await id.token({ sub: 'alice' })}` },
      payload: tools,
    })
    expect(alice.statusCode).toBe(200)
    expect(messagesOf(alice.body)[0]).toMatchObject({
      result: { tools: [{ name: 'execute_code' }, { name: 'search_tools' }] },
    })
  })

  it('PRT-03 refuses an unsupported protocol version on a session', async () => {
    const a = app({ config: devConfig(), insecureDev: true })
    const sid = String(
      (await a.inject({ method: 'POST', url: '/mcp', headers: MCP_HEADERS, payload: INIT_BODY }))
        .headers['mcp-session-id'],
    )
    const res = await a.inject({
      method: 'POST',
      url: '/mcp',
      headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' },
      payload: tools,
    })
    expect(res.statusCode).toBe(400)
    expect(res.body).toContain('Unsupported protocol version')
  })

  it('allows maxSessions sessions and refuses one more with 503', async () => {
    const a = app({ config: devConfig(), insecureDev: true, maxSessions: 2 })
    const open = () =>
      a.inject({ method: 'POST', url: '/mcp', headers: MCP_HEADERS, payload: INIT_BODY })
    expect((await open()).statusCode).toBe(200)
    expect((await open()).statusCode).toBe(200)
    const third = await open()
    expect(third.statusCode).toBe(503)
    expect(rpcMessage(third.body)).toBe(
      'Service Unavailable: too many sessions (limit 2); close one (DELETE /mcp) or retry later',
    )
  })

  it('closes a session on DELETE and after sessionIdleMs without requests', async () => {
    const idleClosed: string[] = []
    let closedOne: () => void = () => undefined
    const a = app({
      config: devConfig(),
      insecureDev: true,
      sessionIdleMs: 50,
      onSessionIdleClose: (id) => {
        idleClosed.push(id)
        closedOne()
      },
    })
    const open = async () =>
      String(
        (await a.inject({ method: 'POST', url: '/mcp', headers: MCP_HEADERS, payload: INIT_BODY }))
          .headers['mcp-session-id'],
      )
    const headers = (sid: string) => ({
      ...MCP_HEADERS,
      'mcp-session-id': sid,
      'mcp-protocol-version': '2025-06-18',
    })
    const deleted = await open()
    const { 'content-type': _, ...noBody } = headers(deleted)
    expect((await a.inject({ method: 'DELETE', url: '/mcp', headers: noBody })).statusCode).toBe(
      200,
    )
    expect(
      (await a.inject({ method: 'POST', url: '/mcp', headers: headers(deleted), payload: tools }))
        .statusCode,
    ).toBe(404)
    const closed = new Promise<void>((resolve) => {
      closedOne = resolve
    })
    const idle = await open()
    await closed
    expect(idleClosed).toEqual([idle])
    expect(
      (await a.inject({ method: 'POST', url: '/mcp', headers: headers(idle), payload: tools }))
        .statusCode,
    ).toBe(404)
  })
})

describe('admission at the HTTP edge', () => {
  const execute = (code: string) => ({
    jsonrpc: '2.0',
    id: 7,
    method: 'tools/call',
    params: { name: 'execute_code', arguments: { code } },
  })
  async function session(a: FastifyInstance): Promise<Record<string, string>> {
    const sid = String(
      (await a.inject({ method: 'POST', url: '/mcp', headers: MCP_HEADERS, payload: INIT_BODY }))
        .headers['mcp-session-id'],
    )
    return { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }
  }

  for (const [code, status, retryAfterMs, header] of [
    ['OVERLOADED', 503, 1500, '2'],
    ['RATE_LIMITED', 429, 200, '1'],
  ] as const) {
    it(`${code}: execute_code is answered ${status} at once, with Retry-After and the retry time`, async () => {
      const engine = fakeEngine(undefined, {
        refusal: { code, message: 'the gateway is busy', retryAfterMs },
      })
      const a = app({ config: devConfig(), insecureDev: true, engine })
      const res = await a.inject({
        method: 'POST',
        url: '/mcp',
        headers: await session(a),
        payload: execute('1'),
      })
      expect(res.statusCode).toBe(status)
      expect(res.headers['retry-after']).toBe(header)
      expect(res.json()).toEqual({
        jsonrpc: '2.0',
        id: 7,
        error: {
          code: -32000,
          message: `${code}: the gateway is busy`,
          data: { code, retryAfterMs },
        },
      })
      // The engine was never asked to run it.
      expect(engine.seen.principal).toBeUndefined()
    })
  }

  it('other requests still pass while executions are refused', async () => {
    const engine = fakeEngine(undefined, {
      refusal: { code: 'OVERLOADED', message: 'busy', retryAfterMs: 100 },
    })
    const a = app({ config: devConfig(), insecureDev: true, engine })
    const res = await a.inject({
      method: 'POST',
      url: '/mcp',
      headers: await session(a),
      payload: { jsonrpc: '2.0', id: 2, method: 'tools/list' },
    })
    expect(res.statusCode).toBe(200)
  })
})
