/**
 * Hostile authorisation through the whole HTTP path: real tokens from a local IdP, the real
 * gateway and engine, a policy on `principal.scopes`. A tool filtered for a principal is neither
 * listed nor reachable from execute_code by any spelling (its own spellings answer TOOL_DENIED,
 * other names UNKNOWN_TOOL), and the upstream is never called; the
 * same tool is listed and runs for a principal whose token carries the scope.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startIdp, type Idp } from '../helpers/idp.js'
import { testRuntime, type TestRuntime } from '../helpers/runtime.js'
import { connect, execute, startGateway, type Gateway } from './helpers.js'

const AUDIENCE = 'https://sluice.test/mcp'
const POLICY = `
rules:
  - id: read-items
    effect: allow
    when: tool.server == "rec" && tool.name == "read_item"
  - id: delete-needs-scope
    effect: allow
    when: tool.server == "rec" && tool.name == "delete_item" && "items:delete" in principal.scopes
`

let idp: Idp
let rt: TestRuntime
let gw: Gateway
const clients: Client[] = []

beforeAll(async () => {
  idp = await startIdp()
  rt = await testRuntime({
    recording: true,
    policy: POLICY,
    config: {
      identity: {
        audience: AUDIENCE,
        issuers: [{ issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }],
      },
    },
  })
  gw = await startGateway(rt)
})
afterAll(async () => {
  await gw?.close()
  await rt?.close()
  await idp?.close()
})
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close()
})

async function as(sub: string, scope: string): Promise<Client> {
  const c = await connect(gw.url, { token: await idp.mint({ sub, aud: AUDIENCE, scope }) })
  clients.push(c)
  return c
}

const deleted = (id: string) =>
  rt.recorded().filter((r) => r.tool === 'delete_item' && r.args['id'] === id)

describe('a scope-filtered tool through the HTTP path', () => {
  it('is neither described nor found by search for a principal without the scope', async () => {
    const c = await as('mallory', 'items:read')
    const { tools } = await c.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual(['execute_code', 'search_tools'])
    const description = tools.find((t) => t.name === 'execute_code')?.description ?? ''
    expect(description).toContain('read_item')
    expect(description).not.toContain('delete_item')
    const search = await c.callTool({ name: 'search_tools', arguments: { query: 'delete item' } })
    expect(JSON.stringify(search.structuredContent)).not.toContain('delete_item')
  })

  it('is unreachable by every spelling from execute_code, and the upstream is never called', async () => {
    const c = await as('mallory', 'items:read')
    const hidden =
      'tools.rec.delete_item exists but is not available to this caller (policy: no rule allows it)'
    // The tool's own spellings are TOOL_DENIED (it exists, this caller may not use it); other
    // names are UNKNOWN_TOOL, and no answer names the hidden tool it resembles.
    const spellings: Array<[string, string]> = [
      [`tools.rec.delete_item({ id: 'm1' })`, 'TOOL_DENIED'],
      [`tools.rec['delete_item']({ id: 'm2' })`, 'TOOL_DENIED'],
      [`tools['rec']['delete' + '_item']({ id: 'm3' })`, 'TOOL_DENIED'],
      [`tools.rec['delete_іtem']({ id: 'm4' })`, 'UNKNOWN_TOOL'], // Cyrillic і
      [`tools.rec['DELETE_ITEM']({ id: 'm5' })`, 'UNKNOWN_TOOL'],
      [`tools.rec['delete-item']({ id: 'm6' })`, 'UNKNOWN_TOOL'],
      [`tools.rec.delete_itme({ id: 'm7' })`, 'UNKNOWN_TOOL'], // a near miss is not suggested
    ]
    for (const [i, [call, code]] of spellings.entries()) {
      const out = await execute(
        c,
        `try { return await ${call} } catch (e) { return { code: e.code, message: e.message } }`,
      )
      expect(out.ok, call).toBe(true)
      const answer = out.result as { code: string; message: string }
      expect(answer.code, call).toBe(code)
      if (code === 'TOOL_DENIED') expect(answer.message, call).toBe(hidden)
      else expect(answer.message, call).not.toContain('delete_item')
      // Nothing of the definition: neither its description nor its argument schema.
      expect(answer.message, call).not.toMatch(/Delete one item|"id"|string/)
      expect(deleted(`m${i + 1}`), call).toEqual([])
    }
  })

  it('is listed and runs for a principal whose token carries the scope', async () => {
    const c = await as('alice', 'items:read items:delete')
    const { tools } = await c.listTools()
    expect(tools.find((t) => t.name === 'execute_code')?.description ?? '').toContain('delete_item')
    const out = await execute(c, `return await tools.rec.delete_item({ id: 'a1' })`)
    expect(out).toMatchObject({ ok: true, result: 'deleted a1' })
    expect(out.calls).toEqual([
      expect.objectContaining({ tool: 'rec.delete_item', ok: true, decision: 'allow' }),
    ])
    expect(deleted('a1')).toHaveLength(1)
  })

  it('a scope in another claim or a tampered token does not count', async () => {
    // `scopes` is not the claim the verifier reads; the policy sees no items:delete.
    const tokenWithOtherClaim = await idp.mint({
      sub: 'mallory',
      aud: AUDIENCE,
      scopes: ['items:delete'],
    } as never)
    const other = await connect(gw.url, { token: tokenWithOtherClaim })
    clients.push(other)
    const out = await execute(
      other,
      `try { return await tools.rec.delete_item({ id: 'm8' }) } catch (e) { return e.code }`,
    )
    // Without items:delete the tool is hidden from this principal: it exists, and is refused.
    expect(out.result).toBe('TOOL_DENIED')
    expect(deleted('m8')).toEqual([])
    // A payload edited to add the scope fails signature verification at the door.
    const real = await idp.mint({ sub: 'mallory', aud: AUDIENCE, scope: 'items:read' })
    const [h, p, s] = real.split('.')
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'items:read items:delete' })).toString('base64url')}.${s}`
    await expect(connect(gw.url, { token: forged })).rejects.toThrow(/401|invalid|Unauthorized/i)
  })
})
