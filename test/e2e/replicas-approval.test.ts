/**
 * A durable approval across replicas: two `sluice serve` processes with one Redis store behind
 * a round-robin proxy, a 2026-07-28 client (SDK 2.x). The approval is asked by replica A; while
 * the human decides, A is killed (SIGKILL, no goodbye); the answer reaches B, which resumes the
 * execution from the journal in Redis. Every upstream call happens exactly once, recorded by
 * the one fixture file both replicas' upstreams write to.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startIdp, type Idp } from '../helpers/idp.js'
import { hasRedis, startRedis, type RedisServer } from '../helpers/redis.js'
import { startRoundRobin, type RoundRobin } from '../helpers/round-robin.js'
import { SERVERS } from '../helpers/runtime.js'
import {
  AUDIENCE,
  startServe,
  stopChild,
  writeServeConfig,
  type ServeProcess,
} from './clients/harness.js'

describe.skipIf(!hasRedis)('a durable approval survives the replica that asked it', () => {
  let idp: Idp
  let redis: RedisServer
  let dir: string
  let recordFile: string
  let replicas: ServeProcess[] = []
  let proxy: RoundRobin
  let token: string

  beforeAll(async () => {
    idp = await startIdp()
    redis = await startRedis()
    dir = mkdtempSync(join(tmpdir(), 'sluice-replica-approval-'))
    recordFile = join(dir, 'calls.jsonl')
    const { configFile } = writeServeConfig(idp, {
      dir,
      servers: {
        rec: {
          command: process.execPath,
          args: [SERVERS.recording],
          env: { RECORD_FILE: recordFile },
        },
      },
      rules: [
        { id: 'rec', effect: 'allow', when: 'tool.server == "rec"' },
        {
          id: 'big-payments',
          effect: 'approve',
          description: 'payments over 1000 need a human',
          when: 'tool.server == "rec" && tool.name == "pay" && args.amount > 1000',
        },
      ],
      extra: { store: { redis: { url: redis.url } } },
    })
    replicas = await Promise.all([startServe(configFile), startServe(configFile)])
    proxy = await startRoundRobin(replicas.map((r) => r.url))
    token = await idp.mint({
      sub: 'alice',
      aud: AUDIENCE,
      exp: Math.floor(Date.now() / 1000) + 3600,
    })
  }, 60_000)

  afterAll(async () => {
    await proxy?.close()
    await Promise.all(replicas.map((r) => stopChild(r.child)))
    await redis?.close()
    await idp?.close()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  const recorded = (): { tool: string; args: Record<string, unknown> }[] =>
    existsSync(recordFile)
      ? readFileSync(recordFile, 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { tool: string; args: Record<string, unknown> })
      : []

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
