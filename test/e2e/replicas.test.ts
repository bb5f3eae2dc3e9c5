/**
 * Scale-out without sticky routing: two `sluice serve` replicas on the same config behind a
 * plain round-robin proxy. A 2026-07-28 client (SDK 2.x pinned to that revision) is served with
 * every request landing on the other replica than the one before: discovery, listing,
 * execution and search. A 2025-11-25 session is pinned to the replica that opened it, so the
 * same proxy breaks it, and the answer says so (404, "Session not found").
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startIdp, type Idp } from '../helpers/idp.js'
import { startRoundRobin, type RoundRobin } from '../helpers/round-robin.js'
import {
  AUDIENCE,
  CODE,
  RESULT,
  names,
  startServe,
  stopChild,
  writeConfig,
  type ServeProcess,
} from './clients/harness.js'

let idp: Idp
let dir: string
let replicas: ServeProcess[] = []
let proxy: RoundRobin
let token: string

beforeAll(async () => {
  idp = await startIdp()
  const written = writeConfig(idp)
  dir = written.dir
  replicas = await Promise.all([startServe(written.configFile), startServe(written.configFile)])
  proxy = await startRoundRobin(replicas.map((r) => r.url))
  token = await idp.mint({ sub: 'alice', aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 3600 })
}, 60_000)

afterAll(async () => {
  await proxy?.close()
  await Promise.all(replicas.map((r) => stopChild(r.child)))
  await idp?.close()
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

const auth = () => ({ requestInit: { headers: { Authorization: `Bearer ${token}` } } })

describe('two replicas behind a round-robin proxy', () => {
  it('serves a 2026-07-28 client statelessly, every request alternating replicas', async () => {
    const before = [...proxy.served]
    const client = new Client(
      { name: 'replicas-e2e', version: '0.0.1' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    )
    const transport = new StreamableHTTPClientTransport(new URL(proxy.url), auth())
    try {
      await client.connect(transport)
      expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28')
      expect(transport.sessionId).toBeUndefined()
      for (let i = 0; i < 2; i++) {
        expect(names((await client.listTools()).tools)).toEqual(['execute_code', 'search_tools'])
        const result = await client.callTool({ name: 'execute_code', arguments: { code: CODE } })
        expect(result.structuredContent).toEqual(RESULT)
        const found = await client.callTool({ name: 'search_tools', arguments: { query: 'echo' } })
        expect(found.structuredContent).toMatchObject({ matches: [{ tool: 'everything.echo' }] })
      }
    } finally {
      await client.close()
    }
    // server/discover plus 6 requests, alternating: neither replica served them all.
    const served = proxy.served.map((n, i) => n - before[i]!)
    expect(served[0]! + served[1]!).toBeGreaterThanOrEqual(7)
    expect(Math.abs(served[0]! - served[1]!)).toBeLessThanOrEqual(1)
  })

  it('a 2025-11-25 session is pinned to one replica: the other answers 404 Session not found', async () => {
    const client = new ClientV1({ name: 'replicas-e2e-v1', version: '0.0.1' })
    const transport = new TransportV1(new URL(proxy.url), auth())
    try {
      // initialize lands on one replica, notifications/initialized on the other.
      await expect(client.connect(transport)).rejects.toThrow(/Session not found/)
    } finally {
      await client.close()
    }
  })
})
