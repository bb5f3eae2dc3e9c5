/**
 * PII guardrails through the real CLI: `sluice stdio` (one connection, one session) and
 * `sluice serve` (a 2025-11-25 session per client, JWTs of two principals), real upstreams (the
 * CRM fixture holds the data, the recording fixture's `send_email` records what it received).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startIdp, type Idp } from '../helpers/idp.js'
import { FIXTURES, SERVERS } from '../helpers/runtime.js'
import {
  AUDIENCE,
  MAIN,
  startServe,
  stopChild,
  writeServeConfig,
  type ServeProcess,
} from './clients/harness.js'

const READ = `const c = await tools.crm.find_customer({ id: 'ada' }); return c.email`
const SEND = `return await tools.rec.send_email({ to: '[EMAIL_1]', subject: 'hi' })`

let idp: Idp
let dir: string
let configFile: string
let recordFile: string

beforeAll(async () => {
  idp = await startIdp()
  dir = mkdtempSync(join(tmpdir(), 'sluice-guard-cli-'))
  recordFile = join(dir, 'calls.jsonl')
  ;({ configFile } = writeServeConfig(idp, {
    dir,
    servers: {
      crm: { command: process.execPath, args: [join(FIXTURES, 'servers/crm.mjs')] },
      rec: {
        command: process.execPath,
        args: [SERVERS.recording],
        env: { RECORD_FILE: recordFile },
      },
    },
    rules: [{ id: 'all', effect: 'allow', when: 'true' }],
    local: { sub: 'local-user', scopes: [] },
    extra: { guardrails: { pii: { resolveFor: ['rec.send_email'] } } },
  }))
})
afterAll(async () => {
  await idp?.close()
  rmSync(dir, { recursive: true, force: true })
})

const recorded = (): Array<{ tool: string; args: Record<string, unknown> }> => {
  try {
    return readFileSync(recordFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
  } catch {
    return []
  }
}

async function run(client: Client, code: string): Promise<unknown> {
  const result = await client.callTool({ name: 'execute_code', arguments: { code } })
  expect(result.isError).toBeUndefined()
  return (result.structuredContent as { result: unknown }).result
}

describe('sluice stdio with guardrails.pii', () => {
  it('the model sees a token; the same connection resolves it for a resolveFor tool', async () => {
    const client = new Client({ name: 'guard-e2e', version: '0.0.1' })
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [MAIN, 'stdio', '--config', configFile],
        stderr: 'pipe',
      }),
    )
    try {
      const before = recorded().length
      const result = await client.callTool({ name: 'execute_code', arguments: { code: READ } })
      expect(JSON.stringify(result)).not.toContain('ada.lovelace@example.com')
      expect((result.structuredContent as { result: unknown }).result).toBe('[EMAIL_1]')
      expect(await run(client, SEND)).toBe('sent to [EMAIL_1]')
      expect(recorded().slice(before)).toEqual([
        { tool: 'send_email', args: { to: 'ada.lovelace@example.com', subject: 'hi' } },
      ])
    } finally {
      await client.close()
    }
  })
})

describe('sluice serve with guardrails.pii', () => {
  let serve: ServeProcess
  beforeAll(async () => {
    serve = await startServe(configFile)
  })
  afterAll(() => stopChild(serve.child))

  const connect = async (sub: string): Promise<Client> => {
    const token = await idp.mint({ sub, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 600 })
    const client = new Client({ name: 'guard-e2e', version: '0.0.1' })
    await client.connect(
      new StreamableHTTPClientTransport(new URL(serve.url), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    )
    return client
  }

  it("a token from principal A is literal text for principal B's call", async () => {
    const alice = await connect('alice')
    const bob = await connect('bob')
    try {
      expect(await run(alice, READ)).toBe('[EMAIL_1]')
      const before = recorded().length
      expect(await run(bob, SEND)).toBe('sent to [EMAIL_1]')
      expect(await run(alice, SEND)).toBe('sent to [EMAIL_1]')
      expect(recorded().slice(before)).toEqual([
        { tool: 'send_email', args: { to: '[EMAIL_1]', subject: 'hi' } },
        { tool: 'send_email', args: { to: 'ada.lovelace@example.com', subject: 'hi' } },
      ])
    } finally {
      await alice.close()
      await bob.close()
    }
  })
})
