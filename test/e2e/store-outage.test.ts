/**
 * Redis down under a running `sluice serve` with a shared rate limit: an execution is refused
 * at the HTTP edge at once with 503 and `Retry-After`, the process stays up, and it serves again
 * when Redis is back. Real redis-server, real serve, real JWT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRedis } from '../helpers/redis.js'
import { SERVERS } from '../helpers/runtime.js'
import {
  startRedisServeEnv,
  startServe,
  stopChild,
  writeServeConfig,
  type RedisServeEnv,
  type ServeProcess,
} from './clients/harness.js'

describe.skipIf(!hasRedis)('a Redis outage at the HTTP edge', () => {
  let env: RedisServeEnv
  let serve: ServeProcess
  let token: string

  beforeAll(async () => {
    env = await startRedisServeEnv('sluice-store-outage-')
    const { configFile } = writeServeConfig(env.idp, {
      dir: env.dir,
      servers: { rec: { command: process.execPath, args: [SERVERS.recording] } },
      rules: [{ id: 'rec', effect: 'allow', when: 'tool.server == "rec"' }],
      extra: {
        limits: { perPrincipal: { executionsPerMinute: 600 } },
        store: { redis: { url: env.redis.url, commandTimeoutMs: 500 } },
      },
    })
    serve = await startServe(configFile)
    token = await env.token('alice')
  }, 60_000)

  afterAll(async () => {
    if (serve !== undefined) await stopChild(serve.child)
    await env?.close()
  })

  /** One stateless `execute_code` POST, as a 2026-07-28 client sends it. */
  const post = () =>
    fetch(serve.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'execute_code',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'tools/call',
        params: {
          name: 'execute_code',
          arguments: { code: 'return 1' },
          _meta: {
            'io.modelcontextprotocol/protocolVersion': '2026-07-28',
            'io.modelcontextprotocol/clientInfo': { name: 'outage', version: '0.0.1' },
            'io.modelcontextprotocol/clientCapabilities': {},
          },
        },
      }),
    })

  it('answers 503 with Retry-After while Redis is down, stays up, and heals', async () => {
    const up = await post()
    expect(up.status, await up.clone().text()).toBe(200)
    await up.text()

    await env.redis.kill()
    const started = performance.now()
    const down = await post()
    expect(down.status).toBe(503)
    expect(down.headers.get('retry-after')).toBe('1')
    expect(await down.json()).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: {
        code: -32000,
        message:
          'OVERLOADED: the shared rate-limit store is unavailable, so no execution starts now',
        data: { code: 'OVERLOADED', retryAfterMs: 1000 },
      },
    })
    // Refused at once, not after a command timeout.
    expect(performance.now() - started).toBeLessThan(500)
    expect(serve.child.exitCode).toBeNull()

    await env.redis.restart()
    await expect
      .poll(async () => (await post()).status, { timeout: 10_000, interval: 100 })
      .toBe(200)
  })
})
