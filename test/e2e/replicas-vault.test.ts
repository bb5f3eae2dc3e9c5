/**
 * The PII vault shared by replicas: two `sluice serve` processes on one config with a Redis
 * store and `guardrails.pii` (the CRM fixture's records, the recording fixture's `send_email` in
 * `resolveFor`) behind a round-robin proxy, a 2026-07-28 client (SDK 2.x). A token made by one
 * replica resolves in a call the other serves, the same address gets the same token on both
 * (also when both tokenise it at the same moment), and Redis holds no address, no identity and
 * no label in the clear. A replica without `vaultKeyFrom` does not start, and says why.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { createClient } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRedis } from '../helpers/redis.js'
import type { RoundRobin } from '../helpers/round-robin.js'
import { FIXTURES, SERVERS } from '../helpers/runtime.js'
import {
  readJsonl,
  startRedisServeEnv,
  startReplicas,
  startServe,
  writeServeConfig,
  type RedisServeEnv,
  type Replicas,
} from './clients/harness.js'

const CRM = join(FIXTURES, 'servers/crm.mjs')
const ADA = 'ada.lovelace@example.com'
const ALAN = 'alan.turing@example.org'

describe.skipIf(!hasRedis)('the PII vault shared by two replicas in Redis', () => {
  let env: RedisServeEnv
  let cluster: Replicas
  let recordFile: string
  let proxy: RoundRobin
  const clients: Client[] = []

  const config = (dir: string, pii: Record<string, unknown>) =>
    writeServeConfig(env.idp, {
      dir,
      servers: {
        crm: { command: process.execPath, args: [CRM] },
        rec: {
          command: process.execPath,
          args: [SERVERS.recording],
          env: { RECORD_FILE: recordFile },
        },
      },
      rules: [{ id: 'all', effect: 'allow', when: 'true' }],
      extra: {
        store: { redis: { url: env.redis.url } },
        guardrails: { pii: { resolveFor: ['rec.send_email'], ...pii } },
      },
    })

  beforeAll(async () => {
    env = await startRedisServeEnv('sluice-replica-vault-')
    recordFile = join(env.dir, 'calls.jsonl')
    writeFileSync(join(env.dir, 'vault.key'), `${randomBytes(32).toString('base64')}\n`, {
      mode: 0o600,
    })
    const { configFile } = config(env.dir, { vaultKeyFrom: 'file:vault.key' })
    cluster = await startReplicas(configFile)
    proxy = cluster.proxy
  }, 60_000)

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await cluster?.close()
    await env?.close()
  })

  /** A 2026-07-28 client of `sub` through the proxy: no session, every request routed anew. */
  const connect = async (sub: string): Promise<Client> => {
    const token = await env.token(sub)
    const client = new Client(
      { name: 'replicas-vault', version: '0.0.1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    )
    clients.push(client)
    await client.connect(
      new StreamableHTTPClientTransport(new URL(proxy.url), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    )
    return client
  }

  /** Runs `code`; resolves with its result and the replica that served the call. */
  const run = async (
    client: Client,
    code: string,
  ): Promise<{ result: unknown; replica: number }> => {
    const before = [...proxy.served]
    const answer = await client.callTool({ name: 'execute_code', arguments: { code } })
    const served = proxy.served.map((n, i) => n - before[i]!)
    // One request per call, so the replica is known.
    expect(served.reduce((a, b) => a + b, 0)).toBe(1)
    const content = answer.structuredContent as { ok: boolean; result: unknown }
    expect(content.ok).toBe(true)
    return { result: content.result, replica: served.indexOf(1) }
  }

  const recorded = () => readJsonl<{ tool: string; args: Record<string, unknown> }>(recordFile)

  it('a token made on one replica resolves on the other; one address, one token on both', async () => {
    const alice = await connect('alice')
    const find = `return (await tools.crm.find_customer({ id: 'ada' })).email`
    const first = await run(alice, find)
    expect(first.result).toBe('[EMAIL_1]')
    const second = await run(
      alice,
      `const ada = await tools.crm.find_customer({ id: 'ada' })
       const alan = await tools.crm.find_customer({ id: 'alan' })
       return [ada.email, alan.email]`,
    )
    expect(second.replica).not.toBe(first.replica)
    expect(second.result).toEqual(['[EMAIL_1]', '[EMAIL_2]'])
    // [EMAIL_2] was made by the second replica; the first resolves it, and the other way round.
    const send = (token: string) =>
      `return await tools.rec.send_email({ to: '${token}', subject: 'across' })`
    const third = await run(alice, send('[EMAIL_2]'))
    expect(third.replica).toBe(first.replica)
    expect(third.result).toBe('sent to [EMAIL_2]')
    const fourth = await run(alice, send('[EMAIL_1]'))
    expect(fourth.replica).toBe(second.replica)
    expect(fourth.result).toBe('sent to [EMAIL_1]')
    expect(recorded().filter((r) => r.tool === 'send_email')).toEqual([
      { tool: 'send_email', args: { to: ALAN, subject: 'across' } },
      { tool: 'send_email', args: { to: ADA, subject: 'across' } },
    ])
  })

  it('two replicas tokenising a new address at the same moment give it one token', async () => {
    const bob = await connect('bob')
    // bob's scope is his own: ada's address is his first, made by one replica only.
    expect(
      (await run(bob, `return (await tools.crm.find_customer({ id: 'ada' })).email`)).result,
    ).toBe('[EMAIL_1]')
    const both = async (code: string): Promise<unknown[]> => {
      const before = [...proxy.served]
      const answers = await Promise.all([
        bob.callTool({ name: 'execute_code', arguments: { code } }),
        bob.callTool({ name: 'execute_code', arguments: { code } }),
      ])
      expect(proxy.served.map((n, i) => n - before[i]!)).toEqual([1, 1])
      return answers.map((a) => (a.structuredContent as { result: unknown }).result)
    }
    // New to both at once: one token, the scope's second, whichever replica made it.
    expect(await both(`return (await tools.crm.find_customer({ id: 'alan' })).email`)).toEqual([
      '[EMAIL_2]',
      '[EMAIL_2]',
    ])
    const sent = recorded().length
    await both(`return await tools.rec.send_email({ to: '[EMAIL_2]', subject: 'both' })`)
    // A number bob never got stays literal text.
    await run(bob, `return await tools.rec.send_email({ to: '[EMAIL_3]', subject: 'x' })`)
    expect(recorded().slice(sent)).toEqual([
      { tool: 'send_email', args: { to: ALAN, subject: 'both' } },
      { tool: 'send_email', args: { to: ALAN, subject: 'both' } },
      { tool: 'send_email', args: { to: '[EMAIL_3]', subject: 'x' } },
    ])
  })

  it('Redis holds no address, no identity and no label in the clear, and a TTL on every key', async () => {
    const client = createClient({ url: env.redis.url })
    await client.connect()
    try {
      const keys = (await client.keys('sluice:*')).filter((k) => k.includes('vault:'))
      expect(keys.length).toBeGreaterThan(0)
      for (const key of keys) {
        expect(key).not.toMatch(/example|alice|bob|ada|alan/)
        expect(await client.pTTL(key)).toBeGreaterThan(0)
        const type = await client.type(key)
        const content =
          type === 'string'
            ? String(await client.get(key))
            : (await client.zRange(key, 0, -1)).join(' ')
        expect(content).not.toMatch(/example|alice|bob|lovelace|turing/)
      }
    } finally {
      client.destroy()
    }
  })

  it('a replica with store.redis and tokenize but no vaultKeyFrom does not start, and says why', async () => {
    const bare = mkdtempSync(join(tmpdir(), 'sluice-replica-vault-bare-'))
    try {
      const { configFile } = config(bare, {})
      await expect(startServe(configFile)).rejects.toThrow(
        /guardrails\.pii\.vaultKeyFrom: required with store\.redis when pii\.mode is tokenize: the vault is then kept in Redis, where its values would sit in plaintext/,
      )
    } finally {
      rmSync(bare, { recursive: true, force: true })
    }
  })
})
