/**
 * A durable approval across replicas: two `sluice serve` processes with one Redis store behind
 * a round-robin proxy, a 2026-07-28 client (SDK 2.x). The approval is asked by replica A; while
 * the human decides, A is killed (SIGKILL, no goodbye); the answer reaches B, which resumes the
 * execution from the journal in Redis. Every upstream call happens exactly once, recorded by
 * the one fixture file both replicas' upstreams write to.
 */
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hasRedis } from '../helpers/redis.js'
import type { RoundRobin } from '../helpers/round-robin.js'
import { SERVERS } from '../helpers/runtime.js'
import {
  BIG_PAYMENTS_RULE,
  readJsonl,
  startRedisServeEnv,
  startReplicas,
  writeServeConfig,
  type RedisServeEnv,
  type Replicas,
  type ServeProcess,
} from './clients/harness.js'

describe.skipIf(!hasRedis)('a durable approval survives the replica that asked it', () => {
  let env: RedisServeEnv
  let cluster: Replicas
  let recordFile: string
  let replicas: ServeProcess[] = []
  let proxy: RoundRobin
  let token: string

  beforeAll(async () => {
    env = await startRedisServeEnv('sluice-replica-approval-')
    recordFile = join(env.dir, 'calls.jsonl')
    const { configFile } = writeServeConfig(env.idp, {
      dir: env.dir,
      servers: {
        rec: {
          command: process.execPath,
          args: [SERVERS.recording],
          env: { RECORD_FILE: recordFile },
        },
      },
      rules: [{ id: 'rec', effect: 'allow', when: 'tool.server == "rec"' }, BIG_PAYMENTS_RULE],
      extra: { store: { redis: { url: env.redis.url } } },
    })
    cluster = await startReplicas(configFile)
    ;({ replicas, proxy } = cluster)
    token = await env.token('alice')
  }, 60_000)

  afterAll(async () => {
    await cluster?.close()
    await env?.close()
  })

  const recorded = () => readJsonl<{ tool: string; args: Record<string, unknown> }>(recordFile)

  it('is asked on A, answered while A is killed, and completed on B; nothing runs twice', async () => {
    const client = new Client(
      { name: 'replica-approval', version: '0.0.1' },
      {
        capabilities: { elicitation: { form: {} } },
        versionNegotiation: { mode: { pin: '2026-07-28' } },
      },
    )
    let killed: ServeProcess | undefined
    let before: number[] = []
    client.setRequestHandler('elicitation/create', async () => {
      // The replica that served the tools/call asked: kill it and route around it.
      const asker = proxy.served.findIndex((n, i) => n > before[i]!)
      killed = replicas[asker]!
      const gone = new Promise<void>((resolve) => killed!.child.once('exit', () => resolve()))
      killed.child.kill('SIGKILL')
      await gone
      proxy.setBackends(replicas.filter((r) => r !== killed).map((r) => r.url))
      return { action: 'accept', content: { approve: true } }
    })
    const transport = new StreamableHTTPClientTransport(new URL(proxy.url), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    })
    try {
      await client.connect(transport)
      before = [...proxy.served]
      const result = await client.callTool({
        name: 'execute_code',
        arguments: {
          code: `const item = await tools.rec.read_item({ id: 'across' })
                 const paid = await tools.rec.pay({ amount: 5000, to: 'across' })
                 return { item: item !== undefined, paid: paid.paid }`,
        },
      })
      expect(result.structuredContent).toMatchObject({
        ok: true,
        result: { item: true, paid: 5000 },
      })
    } finally {
      await client.close()
    }
    expect(killed?.child.signalCode).toBe('SIGKILL')
    const calls = recorded().filter((r) => r.args['id'] === 'across' || r.args['to'] === 'across')
    expect(calls.map((r) => r.tool)).toEqual(['read_item', 'pay'])
  })
})
