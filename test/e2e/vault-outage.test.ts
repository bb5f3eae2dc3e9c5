/**
 * The shared vault fails closed: with Redis gone under a running engine (`store.redis`,
 * `guardrails.pii` tokenising), an execution whose result holds an address ends without it,
 * and a `resolveFor` call with a token is refused before the upstream; once Redis is back
 * (empty: it kept nothing), tokens are made again. Real redis-server, real upstreams.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRedis, startRedis, type RedisServer } from '../helpers/redis.js'
import { FIXTURES, testRuntime, type TestRuntime } from '../helpers/runtime.js'

const CRM = join(FIXTURES, 'servers/crm.mjs')
const KEY_ENV = 'SLUICE_TEST_OUTAGE_VAULT_KEY'

describe.skipIf(!hasRedis)('the shared vault with Redis down', () => {
  let redis: RedisServer
  let rt: TestRuntime

  beforeAll(async () => {
    redis = await startRedis()
    process.env[KEY_ENV] = randomBytes(32).toString('hex')
    rt = await testRuntime({
      recording: true,
      config: {
        servers: { crm: { command: process.execPath, args: [CRM] } },
        store: { redis: { url: redis.url, commandTimeoutMs: 300 } },
        guardrails: { pii: { resolveFor: ['rec.send_email'], vaultKeyFrom: `env:${KEY_ENV}` } },
      },
    })
  }, 30_000)
  afterAll(async () => {
    await rt?.close()
    await redis?.close()
    delete process.env[KEY_ENV]
  })

  const find = `return (await tools.crm.find_customer({ id: 'ada' })).email`
  const send = `return await tools.rec.send_email({ to: '[EMAIL_1]', subject: 'x' })`

  it('lets no value through while Redis is down, and tokenises again once it is back', async () => {
    expect((await rt.engine.execute(rt.principal(), find)).result).toBe('[EMAIL_1]')
    await redis.kill()
    // The result cannot be tokenised, so it is not returned: the engine fails closed.
    const down = await rt.engine.execute(rt.principal(), find)
    expect(down).toMatchObject({
      ok: false,
      result: undefined,
      error: { code: 'OVERLOADED', retryAfterMs: 1000 },
    })
    expect(down.error?.message).toMatch(
      /^the PII vault is unavailable \(STORE_UNAVAILABLE\): the result of execution [0-9a-f-]{36} \(after 1 inner calls\) is withheld rather than shown untokenised\. Retry in a moment$/,
    )
    expect(JSON.stringify(down)).not.toContain('lovelace')
    // The token cannot be resolved, so the call is refused before the upstream.
    const before = rt.recorded().length
    const refused = await rt.engine.execute(rt.principal(), send)
    expect(refused).toMatchObject({
      ok: false,
      calls: [{ tool: 'rec.send_email', ok: false, code: 'OVERLOADED' }],
      error: { code: 'OVERLOADED', retryAfterMs: 1000 },
    })
    expect(rt.recorded().slice(before)).toEqual([])
    await redis.restart()
    await expect
      .poll(async () => (await rt.engine.execute(rt.principal(), find)).result, {
        timeout: 10_000,
        interval: 100,
      })
      .toBe('[EMAIL_1]')
  })
})
