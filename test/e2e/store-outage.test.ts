/**
 * Redis down under a running `sluice serve` with a shared rate limit: an execution is refused
 * at the HTTP edge at once with 503 and `Retry-After`, the process stays up, and it serves again
 * when Redis is back. Real redis-server, real serve, real JWT.
 */
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startIdp, type Idp } from '../helpers/idp.js'
import { hasRedis, startRedis, type RedisServer } from '../helpers/redis.js'
import { SERVERS } from '../helpers/runtime.js'
import {
  AUDIENCE,
  startServe,
  stopChild,
  writeServeConfig,
  type ServeProcess,
} from './clients/harness.js'

describe.skipIf(!hasRedis)('a Redis outage at the HTTP edge', () => {
  let idp: Idp
  let redis: RedisServer
  let dir: string
  let serve: ServeProcess
  let token: string

  beforeAll(async () => {
    idp = await startIdp()
    redis = await startRedis()
    let configFile: string
    ;({ dir, configFile } = writeServeConfig(idp, {
      servers: { rec: { command: process.execPath, args: [SERVERS.recording] } },
      rules: [{ id: 'rec', effect: 'allow', when: 'tool.server == "rec"' }],
      extra: {
        limits: { perPrincipal: { executionsPerMinute: 600 } },
        store: { redis: { url: redis.url, commandTimeoutMs: 500 } },
      },
    }))
    serve = await startServe(configFile)
    token = await idp.mint({
      sub: 'alice',
      aud: AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 3600,
    })
  }, 60_000)

  afterAll(async () => {
    if (serve !== undefined) await stopChild(serve.child)
    await redis?.close()
    await idp?.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
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

    await redis.kill()
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

    await redis.restart()
    await expect
      .poll(async () => (await post()).status, { timeout: 10_000, interval: 100 })
      .toBe(200)
  })
})
